//! Tests of module expansion through the loader (`tests/inputs/modules/`).

use super::*;

fn load_site() -> Config {
    let paths = [
        PathBuf::from(format!(
            "{}/tests/inputs/inventory.yaml",
            corral_core::testing::REPOSITORY
        )),
        PathBuf::from(format!(
            "{}/tests/inputs/modules/site.yaml",
            corral_core::testing::REPOSITORY
        )),
    ];
    match load(&paths, &LoadOptions::default()) {
        Ok(config) => config,
        Err(errors) => panic!("{:?}", errors.errors),
    }
}

fn resource<'c>(config: &'c Config, address: &str) -> &'c Resource {
    let address = Address::parse(address).unwrap();
    config
        .resources
        .iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| panic!("no {address}"))
}

fn specification(resource: &Resource) -> serde_json::Value {
    from_node(resource.node.get("specification").unwrap()).unwrap()
}

#[test]
fn module_instances_expand_into_resources_named_after_them() {
    let config = load_site();
    let addresses: Vec<String> = config
        .resources
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(
        addresses,
        [
            "os/sysctl.shared",
            "os/package.front.base",
            "os/file.front.conf",
            "os/file.front.index",
            "os/package.back.base",
            "os/file.back.conf",
            "os/file.back.index",
            "os/file.welcome.motd",
            "os/file.after-front",
        ]
    );
    // Named after the directory of the documents using the modules.
    assert_eq!(config.project, "modules");
    // `--target front` selects what instance `front` expanded to.
    let front: Vec<String> = config
        .module_instance("front")
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        front,
        [
            "os/file.front.conf",
            "os/file.front.index",
            "os/package.front.base"
        ]
    );
    assert!(config.module_instance("os/file.front.conf").is_none());
    // Inputs keep their types; defaults fill the rest; `$${` is a literal `${`.
    let front_base = specification(resource(&config, "os/package.front.base"));
    assert_eq!(front_base["present"], serde_json::json!(["nginx", "curl"]));
    assert_eq!(front_base["machines"], serde_json::json!(["n1"]));
    let back_conf = specification(resource(&config, "os/file.back.conf"));
    assert_eq!(back_conf["path"], "/etc/web/port-9090.conf");
    assert_eq!(back_conf["content"], "listen 9090;\n# ${HOME} stays\n");
    let front_conf = specification(resource(&config, "os/file.front.conf"));
    assert_eq!(front_conf["path"], "/etc/web/port-8080.conf");
    let motd = specification(resource(&config, "os/file.welcome.motd"));
    assert_eq!(
        (&motd["content"], &motd["machines"], &motd["path"]),
        (&"Welcome\n".into(), &"all".into(), &"/etc/motd".into())
    );
    // Selectors given as inputs select.
    let back = resource(&config, "os/file.back.index");
    let selected: Vec<&str> = config
        .select(back.spec.selector().unwrap())
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(selected, ["n2"]);
    // Local dependencies follow the instance, outside ones stay, the use site's apply
    // to every resource, and so does its lifecycle.
    let depends = |address: &str| -> Vec<String> {
        resource(&config, address)
            .depends_on
            .iter()
            .map(Address::to_string)
            .collect()
    };
    assert_eq!(
        depends("os/file.front.conf"),
        ["os/package.front.base", "os/sysctl.shared"]
    );
    assert_eq!(depends("os/file.front.index"), ["os/file.front.conf"]);
    assert_eq!(depends("os/package.front.base"), Vec::<String>::new());
    assert_eq!(
        depends("os/file.back.index"),
        ["os/file.back.conf", "os/sysctl.shared"]
    );
    assert_eq!(depends("os/package.back.base"), ["os/sysctl.shared"]);
    assert_eq!(depends("os/file.after-front"), ["os/file.front.index"]);
    assert!(
        resource(&config, "os/file.back.conf")
            .lifecycle
            .prevent_destroy
    );
    assert!(
        !resource(&config, "os/file.front.conf")
            .lifecycle
            .prevent_destroy
    );
    // Errors about expanded resources point into the module.
    assert!(resource(&config, "os/file.front.conf")
        .origin
        .file
        .name
        .ends_with("tests/inputs/modules/web/site.yaml"));
}

/// A configuration in `root/config` using `root/modules/m`, whose files the digest covers.
#[test]
fn the_digest_covers_module_files_and_sources_outside_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let (config_dir, module_dir) = (root.path().join("config"), root.path().join("modules/m"));
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::create_dir_all(&module_dir).unwrap();
    std::fs::write(
        module_dir.join("module.yaml"),
        "inputs:\n  path: { type: string }\n",
    )
    .unwrap();
    let file = "kind: os/file\nname: f\nspecification:\n  machines: all\n  path: ${inputs.path}\n  content: \"a\\n\"\n";
    std::fs::write(module_dir.join("file.yaml"), file).unwrap();
    std::fs::write(
        config_dir.join("site.yaml"),
        "kind: module\nname: one\nspecification:\n  source: m\n  inputs: { path: /etc/one }\n",
    )
    .unwrap();
    let paths = [
        PathBuf::from(format!(
            "{}/tests/inputs/inventory.yaml",
            corral_core::testing::REPOSITORY
        )),
        config_dir.clone(),
    ];
    let digest = || {
        load(&paths, &LoadOptions::default())
            .map(|c| c.digest)
            .map_err(|e| e.errors)
    };
    let before = digest().unwrap();
    std::fs::write(module_dir.join("file.yaml"), file.replace("a\\n", "b\\n")).unwrap();
    assert_ne!(digest().unwrap(), before);

    // A module reached through a symbolic link to outside the configuration is refused.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(elsewhere.path().join("x")).unwrap();
    std::fs::write(elsewhere.path().join("x/module.yaml"), "inputs: {}\n").unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("x"), config_dir.join("x")).unwrap();
    std::fs::write(
        config_dir.join("site.yaml"),
        "kind: module\nname: one\nspecification:\n  source: ./x\n",
    )
    .unwrap();
    let errors = digest().unwrap_err();
    assert!(
        errors[0]
            .message
            .ends_with("outside the configuration's directories"),
        "{errors:?}"
    );
}
