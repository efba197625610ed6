//! The Compose schema (the 20.10 CLI's `config_schema_v3.N.json`) as tables, with what
//! corral adds: which keys it ignores, warns about or refuses, and why.

use super::yaml_v2::Val;

/// What a value must be. Each variant is one of the schema's types or shared definitions.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    Any,
    Str,
    Int,
    Num,
    Bool,
    /// A string Go's `time.ParseDuration` reads (`10s`, `1m30s`, `1.5h`).
    Duration,
    Enum(&'static [&'static str]),
    /// `environment`, labels and `logging.options` values.
    StrNumNull,
    /// `driver_opts` values.
    StrNum,
    /// Items, and whether they must be unique (`uniqueItems`).
    List(&'static Ty, bool),
    /// A mapping with any keys.
    Dict(&'static Ty),
    Obj(&'static Obj),
    NullOr(&'static Ty),
    OneOf(&'static [Ty]),
}

/// A mapping with known keys.
pub(super) struct Obj {
    pub(super) fields: &'static [Field],
    /// `x-…` keys are allowed from format 3.N (`None`: never).
    pub(super) extensions: Option<u8>,
    pub(super) required: &'static [&'static str],
}

pub(super) struct Field {
    pub(super) name: &'static str,
    /// The first format version (3.N) with this key.
    pub(super) since: u8,
    pub(super) ty: Ty,
    pub(super) note: Note,
}

/// Keys of the format that corral refuses anyway, and why.
#[derive(Clone, Copy)]
pub(super) enum Note {
    None,
    /// `docker stack deploy` ignores the key (with a warning, or none); how to do it in swarm.
    Ignored(&'static str),
    /// `docker stack deploy` refuses the key; its own explanation.
    Refused(&'static str),
    /// `docker stack deploy` ignores the key and the service runs as the file means
    /// anyway: a warning saying why, and the deploy goes ahead.
    Harmless(&'static str),
    /// `restart`: the CLI says it ignores it, yet converts it to a restart policy when
    /// there is no `deploy.restart_policy` (`convertRestartPolicy`); see
    /// [`Loader::restart`].
    ///
    /// [`Loader::restart`]: super::load::Loader::restart
    Restart,
}

const fn field(name: &'static str, since: u8, ty: Ty) -> Field {
    Field {
        name,
        since,
        ty,
        note: Note::None,
    }
}

const fn ignored(name: &'static str, since: u8, help: &'static str) -> Field {
    Field {
        name,
        since,
        ty: Ty::Any,
        note: Note::Ignored(help),
    }
}

const fn harmless(name: &'static str, ty: Ty, why: &'static str) -> Field {
    Field {
        name,
        since: 0,
        ty,
        note: Note::Harmless(why),
    }
}

const fn refused(name: &'static str, help: &'static str) -> Field {
    Field {
        name,
        since: 0,
        ty: Ty::Any,
        note: Note::Refused(help),
    }
}

const fn obj(fields: &'static [Field]) -> Obj {
    Obj {
        fields,
        extensions: None,
        required: &[],
    }
}

const LIST_OF_STRINGS: Ty = Ty::List(&Ty::Str, true);
const STRING_OR_LIST: Ty = Ty::OneOf(&[Ty::Str, LIST_OF_STRINGS]);
const LIST_OR_DICT: Ty = Ty::OneOf(&[Ty::Dict(&Ty::StrNumNull), LIST_OF_STRINGS]);
const DRIVER_OPTS: Ty = Ty::Dict(&Ty::StrNum);
const EXTERNAL: Ty = Ty::OneOf(&[Ty::Bool, Ty::Obj(&obj(&[field("name", 0, Ty::Str)]))]);
const COMMAND: Ty = Ty::OneOf(&[Ty::Str, Ty::List(&Ty::Str, false)]);
const ORDER: Ty = Ty::Enum(&["start-first", "stop-first"]);

const NO_PRIVILEGE: &str =
    "swarm services cannot have it; run such a container outside the stack, or remove the key";

pub(super) static TOP: Obj = Obj {
    fields: &[
        // Checked by `read_version`.
        field("version", 0, Ty::Any),
        field("services", 0, Ty::Dict(&Ty::Obj(&SERVICE))),
        field("networks", 0, Ty::Dict(&Ty::NullOr(&Ty::Obj(&NETWORK)))),
        field("volumes", 0, Ty::Dict(&Ty::NullOr(&Ty::Obj(&VOLUME)))),
        field("secrets", 1, Ty::Dict(&Ty::Obj(&SECRET))),
        field("configs", 3, Ty::Dict(&Ty::Obj(&CONFIG))),
    ],
    extensions: Some(4),
    required: &[],
};

pub(super) static SERVICE: Obj = Obj {
    fields: &[
        ignored("build", 0, "`docker stack deploy` builds nothing: build and push the image, and name it in `image:`"),
        field("cap_add", 0, LIST_OF_STRINGS),
        field("cap_drop", 0, LIST_OF_STRINGS),
        ignored("cgroupns_mode", 9, NO_PRIVILEGE),
        ignored("cgroup_parent", 0, NO_PRIVILEGE),
        field("command", 0, COMMAND),
        field("configs", 3, Ty::List(&Ty::OneOf(&[Ty::Str, Ty::Obj(&FILE_REFERENCE)]), false)),
        harmless("container_name", Ty::Str, "swarm names a service's containers itself (STACK_SERVICE.N.ID); other services reach it by its service name"),
        field("credential_spec", 3, Ty::Obj(&obj(&[
            field("config", 8, Ty::Str),
            field("file", 0, Ty::Str),
            field("registry", 0, Ty::Str),
        ]))),
        harmless("depends_on", LIST_OF_STRINGS, "swarm starts a stack's services in no order; a service that needs another must wait for it (retry, or a healthcheck)"),
        ignored("devices", 0, NO_PRIVILEGE),
        field("deploy", 0, Ty::NullOr(&Ty::Obj(&DEPLOY))),
        field("dns", 0, STRING_OR_LIST),
        field("dns_search", 0, STRING_OR_LIST),
        ignored("domainname", 0, "swarm services cannot set it; remove it"),
        field("entrypoint", 0, COMMAND),
        field("env_file", 0, STRING_OR_LIST),
        field("environment", 0, LIST_OR_DICT),
        harmless("expose", Ty::List(&Ty::OneOf(&[Ty::Str, Ty::Num]), true), "services on a shared network reach every port of each other; `ports:` publishes one outside"),
        ignored("external_links", 0, "services reach each other by service name on a shared network: remove it, and attach both to one network"),
        field("extra_hosts", 0, LIST_OR_DICT),
        field("healthcheck", 0, Ty::Obj(&HEALTHCHECK)),
        field("hostname", 0, Ty::Str),
        field("image", 0, Ty::Str),
        field("init", 7, Ty::Bool),
        ignored("ipc", 0, NO_PRIVILEGE),
        field("isolation", 5, Ty::Str),
        field("labels", 0, LIST_OR_DICT),
        harmless("links", LIST_OF_STRINGS, "services reach each other by service name on a shared network"),
        field("logging", 0, Ty::Obj(&obj(&[
            field("driver", 0, Ty::Str),
            field("options", 0, Ty::Dict(&Ty::StrNumNull)),
        ]))),
        ignored("mac_address", 0, "swarm assigns addresses itself; remove it"),
        ignored("network_mode", 0, "swarm services attach to networks: use `networks:` (an external network `host` for the host's network)"),
        field("networks", 0, Ty::OneOf(&[
            LIST_OF_STRINGS,
            Ty::Dict(&Ty::NullOr(&Ty::Obj(&obj(&[
                field("aliases", 0, LIST_OF_STRINGS),
                ignored("ipv4_address", 0, "swarm assigns addresses on overlay networks itself; remove it"),
                ignored("ipv6_address", 0, "swarm assigns addresses on overlay networks itself; remove it"),
            ])))),
        ])),
        ignored("pid", 0, NO_PRIVILEGE),
        field("ports", 0, Ty::List(&Ty::OneOf(&[Ty::Num, Ty::Str, Ty::Obj(&PORT)]), true)),
        ignored("privileged", 0, NO_PRIVILEGE),
        field("read_only", 0, Ty::Bool),
        Field {
            name: "restart",
            since: 0,
            ty: Ty::Str,
            note: Note::Restart,
        },
        ignored("security_opt", 0, NO_PRIVILEGE),
        ignored("shm_size", 0, "swarm services cannot set it; mount a `tmpfs` volume at /dev/shm instead"),
        field("secrets", 1, Ty::List(&Ty::OneOf(&[Ty::Str, Ty::Obj(&FILE_REFERENCE)]), false)),
        field("sysctls", 0, LIST_OR_DICT),
        field("stdin_open", 0, Ty::Bool),
        field("stop_grace_period", 0, Ty::Duration),
        field("stop_signal", 0, Ty::Str),
        ignored("tmpfs", 0, "`docker stack deploy` drops it without a word: use a `volumes:` entry with `type: tmpfs`"),
        field("tty", 0, Ty::Bool),
        field("ulimits", 0, Ty::Dict(&Ty::OneOf(&[Ty::Int, Ty::Obj(&Obj {
            fields: &[field("hard", 0, Ty::Int), field("soft", 0, Ty::Int)],
            extensions: None,
            required: &["soft", "hard"],
        })]))),
        field("user", 0, Ty::Str),
        ignored("userns_mode", 0, NO_PRIVILEGE),
        field("volumes", 0, Ty::List(&Ty::OneOf(&[Ty::Str, Ty::Obj(&SERVICE_VOLUME)]), true)),
        field("working_dir", 0, Ty::Str),
        // Not in the schema: the CLI refuses them before it checks the schema.
        refused("extends", "Support for `extends` is not implemented yet."),
        refused("volume_driver", "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there."),
        refused("volumes_from", "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option."),
        refused("cpu_quota", "Set resource limits using deploy.resources"),
        refused("cpu_shares", "Set resource limits using deploy.resources"),
        refused("cpuset", "Set resource limits using deploy.resources"),
        refused("mem_limit", "Set resource limits using deploy.resources"),
        refused("memswap_limit", "Set resource limits using deploy.resources"),
    ],
    extensions: Some(7),
    required: &[],
};

static FILE_REFERENCE: Obj = obj(&[
    field("source", 0, Ty::Str),
    field("target", 0, Ty::Str),
    field("uid", 0, Ty::Str),
    field("gid", 0, Ty::Str),
    field("mode", 0, Ty::Num),
]);

static PORT: Obj = obj(&[
    field("mode", 0, Ty::Str),
    field("target", 0, Ty::Int),
    field("published", 0, Ty::Int),
    field("protocol", 0, Ty::Str),
]);

static SERVICE_VOLUME: Obj = Obj {
    fields: &[
        field("type", 0, Ty::Str),
        field("source", 0, Ty::Str),
        field("target", 0, Ty::Str),
        field("read_only", 0, Ty::Bool),
        field("consistency", 0, Ty::Str),
        field(
            "bind",
            0,
            Ty::Obj(&obj(&[field("propagation", 0, Ty::Str)])),
        ),
        field("volume", 0, Ty::Obj(&obj(&[field("nocopy", 0, Ty::Bool)]))),
        field("tmpfs", 6, Ty::Obj(&obj(&[field("size", 0, Ty::Int)]))),
    ],
    extensions: None,
    required: &["type"],
};

static HEALTHCHECK: Obj = obj(&[
    field("disable", 0, Ty::Bool),
    field("interval", 0, Ty::Duration),
    field("retries", 0, Ty::Num),
    field("test", 0, COMMAND),
    field("timeout", 0, Ty::Duration),
    field("start_period", 4, Ty::Duration),
]);

static UPDATE_CONFIG: Obj = obj(&[
    field("parallelism", 0, Ty::Int),
    field("delay", 0, Ty::Duration),
    field("failure_action", 0, Ty::Str),
    field("monitor", 0, Ty::Duration),
    field("max_failure_ratio", 0, Ty::Num),
    field("order", 4, ORDER),
]);

static DEPLOY: Obj = obj(&[
    field("mode", 0, Ty::Str),
    field("endpoint_mode", 2, Ty::Str),
    field("replicas", 0, Ty::Int),
    field("labels", 0, LIST_OR_DICT),
    field("rollback_config", 7, Ty::Obj(&UPDATE_CONFIG)),
    field("update_config", 0, Ty::Obj(&UPDATE_CONFIG)),
    field(
        "resources",
        0,
        Ty::Obj(&obj(&[
            field(
                "limits",
                0,
                Ty::Obj(&obj(&[
                    field("cpus", 0, Ty::Str),
                    field("memory", 0, Ty::Str),
                    field("pids", 9, Ty::Int),
                ])),
            ),
            field(
                "reservations",
                0,
                Ty::Obj(&obj(&[
                    field("cpus", 0, Ty::Str),
                    field("memory", 0, Ty::Str),
                    field(
                        "generic_resources",
                        5,
                        Ty::List(
                            &Ty::Obj(&obj(&[field(
                                "discrete_resource_spec",
                                0,
                                Ty::Obj(&obj(&[
                                    field("kind", 0, Ty::Str),
                                    field("value", 0, Ty::Num),
                                ])),
                            )])),
                            false,
                        ),
                    ),
                ])),
            ),
        ])),
    ),
    field(
        "restart_policy",
        0,
        Ty::Obj(&obj(&[
            field("condition", 0, Ty::Str),
            field("delay", 0, Ty::Duration),
            field("max_attempts", 0, Ty::Int),
            field("window", 0, Ty::Duration),
        ])),
    ),
    field(
        "placement",
        0,
        Ty::Obj(&obj(&[
            field("constraints", 0, Ty::List(&Ty::Str, false)),
            field(
                "preferences",
                3,
                Ty::List(&Ty::Obj(&obj(&[field("spread", 0, Ty::Str)])), false),
            ),
            field("max_replicas_per_node", 8, Ty::Int),
        ])),
    ),
]);

static NETWORK: Obj = Obj {
    fields: &[
        field("name", 5, Ty::Str),
        field("driver", 0, Ty::Str),
        field("driver_opts", 0, DRIVER_OPTS),
        field(
            "ipam",
            0,
            Ty::Obj(&obj(&[
                field("driver", 0, Ty::Str),
                field(
                    "config",
                    0,
                    Ty::List(&Ty::Obj(&obj(&[field("subnet", 0, Ty::Str)])), false),
                ),
            ])),
        ),
        field("external", 0, EXTERNAL),
        field("internal", 0, Ty::Bool),
        field("attachable", 2, Ty::Bool),
        field("labels", 0, LIST_OR_DICT),
    ],
    extensions: Some(7),
    required: &[],
};

static VOLUME: Obj = Obj {
    fields: &[
        field("name", 4, Ty::Str),
        field("driver", 0, Ty::Str),
        field("driver_opts", 0, DRIVER_OPTS),
        field("external", 0, EXTERNAL),
        field("labels", 0, LIST_OR_DICT),
    ],
    extensions: Some(7),
    required: &[],
};

static SECRET: Obj = Obj {
    fields: &[
        field("name", 5, Ty::Str),
        field("file", 0, Ty::Str),
        field("external", 0, EXTERNAL),
        field("labels", 0, LIST_OR_DICT),
        field("driver", 8, Ty::Str),
        field("driver_opts", 8, DRIVER_OPTS),
        field("template_driver", 8, Ty::Str),
    ],
    extensions: Some(7),
    required: &[],
};

static CONFIG: Obj = Obj {
    fields: &[
        field("name", 5, Ty::Str),
        field("file", 0, Ty::Str),
        field("external", 0, EXTERNAL),
        field("labels", 0, LIST_OR_DICT),
        field("template_driver", 8, Ty::Str),
    ],
    extensions: Some(7),
    required: &[],
};

impl Ty {
    pub(super) fn expected(self) -> String {
        match self {
            Ty::Any => "anything".into(),
            Ty::Str => "a string".into(),
            Ty::Int => "an integer".into(),
            Ty::Num => "a number".into(),
            Ty::Bool => "a boolean".into(),
            Ty::Duration => "a duration such as `10s` or `1m30s`".into(),
            Ty::Enum(words) => format!(
                "one of {}",
                words
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ty::StrNumNull => "a string, a number or null".into(),
            Ty::StrNum => "a string or a number".into(),
            Ty::List(..) => "a list".into(),
            Ty::Dict(_) | Ty::Obj(_) => "a mapping".into(),
            Ty::NullOr(inner) => format!("{} or null", inner.expected()),
            Ty::OneOf(alternatives) => alternatives
                .iter()
                .map(|t| t.expected())
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }

    /// Whether a value of this kind is meant for this type (which alternative of a
    /// `OneOf` to check it against).
    pub(super) fn accepts_kind(self, value: &Val) -> bool {
        match (self, value) {
            (Ty::Any, _) => true,
            (Ty::Str | Ty::Duration | Ty::Enum(_), Val::Str(_)) => true,
            (Ty::Int | Ty::Num, Val::Int(_) | Val::UInt(_) | Val::Float(_)) => true,
            (Ty::Bool, Val::Bool(_)) => true,
            (
                Ty::StrNumNull,
                Val::Str(_) | Val::Int(_) | Val::UInt(_) | Val::Float(_) | Val::Null,
            ) => true,
            (Ty::StrNum, Val::Str(_) | Val::Int(_) | Val::UInt(_) | Val::Float(_)) => true,
            (Ty::List(..), Val::Seq(_)) => true,
            (Ty::Dict(_) | Ty::Obj(_), Val::Map(_)) => true,
            (Ty::NullOr(_), Val::Null) => true,
            (Ty::NullOr(inner), other) => inner.accepts_kind(other),
            (Ty::OneOf(alternatives), other) => alternatives.iter().any(|t| t.accepts_kind(other)),
            _ => false,
        }
    }
}
