# pyinfra's form of benches/warm/site.yaml, for benches/peers.sh: the same file, the same
# two sysctls (set and persisted) and the same package absent, as a pyinfra user writes them.
from io import StringIO

from pyinfra.operations import apt, files, server

files.put(
    name="issue-net",
    src=StringIO("Authorized access only\n"),
    dest="/etc/issue.net",
    user="root",
    group="root",
    mode="644",
)
server.sysctl(name="send_redirects", key="net.ipv4.conf.all.send_redirects", value=0, persist=True)
server.sysctl(name="log_martians", key="net.ipv4.conf.all.log_martians", value=1, persist=True)
apt.packages(name="base", packages=["ufw"], present=False)
