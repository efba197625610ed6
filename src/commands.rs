//! What each command does, in terms of the stages. Errors come back as miette reports;
//! `main` turns the outcome into an exit code. A command that connects to hosts opens
//! [`Connections`] first: its SSH masters end however the command ends.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use miette::{miette, IntoDiagnostic, Result, WrapErr};

use crate::address::Address;
use crate::apply;
use crate::apply::interrupt::Interrupts;
use crate::apply::session::{Session, SessionError, SessionOptions};
use crate::cli::{
    ApplyArgs, ConnectArgs, FactsArgs, ForceUnlockArgs, Format, LoadArgs, PlanArgs, SelectArgs,
};
use crate::command_error::CommandError;
use crate::config::{self, Config, LoadOptions};
use crate::exit::ExitStatus;
use crate::facts::FactsFile;
use crate::gather::{self, Connected, GatherOptions};
use crate::graph::{Filter, ResourceGraph};
use crate::plan::Plan;
use crate::planner::{build, SavedPlan, SavedPlanError};
use crate::render::{self, Heading, RenderOptions, Style};
use crate::transport::ssh::{Masters, SshHost, SshOptions};
use crate::transport::Host;

/// Loads the configuration; `connecting` when the command will reach the hosts.
fn load(args: &LoadArgs, connecting: bool) -> Result<Config> {
    let options = LoadOptions {
        ignore_unknown_kinds: args.ignore_unknown_kinds,
        project: args.project.clone().unwrap_or_default(),
        allow_source_outside_config: args.allow_source_outside_config,
        module_path: args.module_path.clone(),
        connecting,
    };
    let config = config::load(&args.paths, &options).map_err(miette::Report::new)?;
    config.require_machines().map_err(miette::Report::new)?;
    Ok(config)
}

/// What a command that connects to hosts holds for its whole run: the SSH options with
/// the run's masters, and the answer to SIGINT and SIGTERM. Dropping it ends every master
/// and removes the control directory (a panic on the main thread does too).
struct Connections {
    ssh: SshOptions,
    gather: GatherOptions,
    interrupts: Arc<Interrupts>,
}

impl Connections {
    fn open(args: &ConnectArgs) -> Result<Connections> {
        let masters = match args.keep_connections.filter(|d| !d.is_zero()) {
            None => Masters::create()
                .into_diagnostic()
                .wrap_err("cannot make a directory for SSH control sockets")?,
            Some(idle) => Masters::kept(idle)
                .into_diagnostic()
                .wrap_err("cannot keep SSH connections")?,
        };
        masters.end_on_panic();
        let interrupts = Interrupts::new(Some(masters.clone()));
        interrupts.listen();
        Ok(Connections {
            ssh: SshOptions {
                config_file: args.ssh_config.clone(),
                connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
                masters,
            },
            gather: GatherOptions {
                parallelism: args.parallelism,
                timeout: facts_timeout(args),
                timings: args.timings,
            },
            interrupts,
        })
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        self.ssh.masters.end_all();
    }
}

/// `corral connections close`.
pub fn close_connections() -> Result<ExitStatus> {
    let closed = crate::transport::ssh::close_kept()
        .into_diagnostic()
        .wrap_err("cannot close the kept SSH connections")?;
    match closed {
        0 => println!("No SSH connection was kept."),
        1 => println!("Closed 1 kept SSH connection."),
        n => println!("Closed {n} kept SSH connections."),
    }
    Ok(ExitStatus::Success)
}

/// The `--timings` table of a read, or nothing without `--timings`.
fn timings_text<H>(args: &ConnectArgs, gathered: &Connected<H>) -> String {
    match args.timings {
        true => gather::render_timings(&gathered.timings),
        false => String::new(),
    }
}

/// Prints the `--timings` table on stderr after what stdout already has, set apart.
fn print_timings(text: &str) {
    if !text.is_empty() {
        // Stdout first, so that the table follows the plan on a terminal.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        eprint!("\n{text}");
    }
}

fn facts_timeout(args: &ConnectArgs) -> Duration {
    Duration::from_secs(args.facts_timeout.max(1))
}

fn filter(config: &Config, args: &SelectArgs) -> Result<Filter> {
    filter_of(config, &args.target, &args.exclude, &args.limit)
}

/// `--target`, `--exclude` and `--limit` as a filter, each checked against the configuration.
fn filter_of(
    config: &Config,
    target: &[String],
    exclude: &[String],
    limit: &[String],
) -> Result<Filter> {
    let parse = |texts: &[String], flag: &'static str| -> Result<Vec<Address>> {
        texts
            .iter()
            .flat_map(|t| match config.module_instance(t) {
                // A module instance: every resource it expanded to.
                Some(addresses) => addresses.iter().cloned().map(Ok).collect::<Vec<_>>(),
                None => vec![Address::parse(t)],
            })
            .map(|parsed| parsed.map_err(|error| CommandError::BadAddress { flag, error }.into()))
            .collect()
    };
    for machine in limit {
        if !config.machines.contains_key(machine) {
            let names: Vec<&str> = config.machines.keys().map(String::as_str).collect();
            return Err(CommandError::UnknownLimit {
                machine: machine.clone(),
                help: crate::base::diagnostic::suggestion(machine, &names, "machines"),
            }
            .into());
        }
    }
    Ok(Filter {
        targets: parse(target, "target")?,
        excludes: parse(exclude, "exclude")?,
        machines: limit.to_vec(),
    })
}

pub fn validate(args: &LoadArgs) -> Result<ExitStatus> {
    let config = load(args, false)?;
    let graph = ResourceGraph::build(&config, &Filter::default()).map_err(miette::Report::new)?;
    println!(
        "The configuration is valid: {} machines, {} resources, {} resource instances.",
        config.machines.len(),
        config.resources.len(),
        graph.instances.len()
    );
    let style = Style::detect_stderr();
    for (address, message) in config.unmatched_selectors() {
        eprintln!("{} {address}: {message}", style.yellow("Warning:"));
    }
    for (address, message) in crate::kinds::config_warnings(&config) {
        eprintln!("{} {address}: {message}", style.yellow("Warning:"));
    }
    Ok(ExitStatus::Success)
}

/// `corral completions SHELL`: the script, from the clap definitions, on stdout.
pub fn completions(args: &crate::cli::CompletionsArgs) -> Result<ExitStatus> {
    use clap::CommandFactory as _;
    let mut command = crate::cli::Cli::command();
    clap_complete::generate(args.shell, &mut command, "corral", &mut std::io::stdout());
    Ok(ExitStatus::Success)
}

/// `corral man [--dir DIR]`: the manual page from the clap definitions, on stdout, or a page
/// per command (what packagers install) written into DIR.
pub fn man(args: &crate::cli::ManArgs) -> Result<ExitStatus> {
    use clap::CommandFactory as _;
    let command = crate::cli::Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot make the directory `{}`", dir.display()))?;
            let mut command = command.disable_help_subcommand(true);
            command.build();
            write_man_pages(&command, dir)?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .into_diagnostic()?;
            std::io::stdout().write_all(&page).into_diagnostic()?;
        }
    }
    Ok(ExitStatus::Success)
}

/// `command`'s page and one per subcommand (as `clap_mangen::generate_to` names them), each
/// written as any output file.
fn write_man_pages(command: &clap::Command, dir: &Path) -> Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    man.render(&mut page).into_diagnostic()?;
    write_output(&dir.join(man.get_filename()), &page).map(|_| ())
}

/// `corral graph PATH… [--target …] [--exclude …] [--limit …]`: the graph, or the part of
/// it a plan with the same options would cover.
pub fn graph(args: &crate::cli::GraphArgs) -> Result<ExitStatus> {
    let config = load(&args.load, false)?;
    let filter = filter_of(&config, &args.target, &args.exclude, &args.limit)?;
    check_addresses(&config, &filter, &Default::default())?;
    let graph = ResourceGraph::build(&config, &filter).map_err(miette::Report::new)?;
    print!("{}", graph.to_dot());
    Ok(ExitStatus::Success)
}

/// A plan and everything it was made from.
struct Planned {
    config: Config,
    graph: ResourceGraph,
    filter: Filter,
    plan: Plan,
    gathered: Connected,
}

/// Plans from a facts file, or from the hosts through `connections`.
async fn make_plan(
    args: &SelectArgs,
    facts: Option<&Path>,
    connections: Option<&Connections>,
) -> Result<Planned> {
    let config = load(&args.load, facts.is_none())?;
    let filter = filter(&config, args)?;
    let graph = ResourceGraph::build(&config, &filter).map_err(miette::Report::new)?;
    let mut probes = gather::probes_by_machine(&config, &graph, &filter);
    // Who holds each host's apply lock, read with its facts (no round trip of its own) and
    // taken out of them before anything digests or saves them.
    let mut locks = BTreeMap::new();
    let gathered = match facts {
        Some(path) => {
            let file = read_facts(path)?;
            let recorded = file.gathered();
            let mut gathered = Connected::default();
            let facts = &mut gathered.facts;
            for machine in probes.keys() {
                match (
                    recorded.hosts.get(machine),
                    recorded.unreachable.get(machine),
                ) {
                    (Some(host), _) => {
                        facts.hosts.insert(machine.clone(), host.clone());
                    }
                    (None, Some(message)) => {
                        facts.unreachable.insert(machine.clone(), message.clone());
                    }
                    (None, None) => {
                        facts.unreachable.insert(
                            machine.clone(),
                            format!("`{}` has no facts for this machine", path.display()),
                        );
                    }
                }
            }
            // What the clusters' managers said (or that none answered), as recorded.
            // Secrets compared with other values than the configuration's now: unknown.
            let same_secrets = crate::kinds::same_secrets(&config, file.secrets_digest.as_deref());
            facts.clusters = recorded.clusters;
            if !same_secrets {
                for read in facts.clusters.values_mut() {
                    crate::kinds::forget_secret_comparisons(&mut read.facts);
                }
            }
            facts.unanswered = recorded.unanswered;
            gathered
        }
        None => {
            if !probes.is_empty() && std::io::stderr().is_terminal() {
                eprintln!("Reading {} hosts…", probes.len());
            }
            let connections = connections
                .ok_or_else(|| miette!("internal error: no connections to plan with"))?;
            for list in probes.values_mut() {
                list.push(apply::lock::probe());
            }
            let mut gathered =
                gather::gather(&config, probes, &connections.ssh, connections.gather).await;
            for (machine, host) in gathered.facts.hosts.iter_mut() {
                if let Some(out) = host.probes.remove(apply::lock::PROBE_KEY) {
                    locks.insert(machine.clone(), out);
                }
            }
            gather::read_clusters(&config, &graph, &mut gathered, connections.gather.timeout).await;
            gathered
        }
    };
    let mut plan = build::plan(&config, &graph, &filter, &gathered.facts);
    warn_of_locks(&mut plan, &locks);
    check_addresses(&config, &filter, &gathered)?;
    Ok(Planned {
        config,
        graph,
        filter,
        plan,
        gathered,
    })
}

/// A warning for each host read that another apply holds (or a killed one left) locked:
/// who and since when, before anyone confirms an apply that will wait for it or fail.
/// `locks` are the hosts' answers to [`apply::lock::probe`].
fn warn_of_locks(plan: &mut Plan, locks: &BTreeMap<String, crate::facts::ProbeOutput>) {
    for (machine, found) in apply::lock::holders_in(locks) {
        let holder = &found.holder;
        let message = match &found.gone {
            Some(why) => format!(
                "{machine} is locked by {holder}, which is gone ({why}): apply stops there unless run with --take-over-stale-lock"
            ),
            None => format!(
                "{machine} is locked by {holder}: an apply runs there, or a killed one left its lock; apply waits for it (--lock-timeout) or stops, and `corral force-unlock {machine} PATH…` removes a lock no apply holds any more"
            ),
        };
        plan.warnings.push(crate::plan::ResourceProblem {
            address: Address::new(crate::base::machine::KIND, &machine, None),
            message,
        });
    }
}

/// Every `--target` and `--exclude` names something: a resource or instance of the
/// configuration, or one that corral's records on the hosts hold (a resource removed from
/// the configuration, to delete). A typo is an error with the nearest address, not a plan
/// that silently does nothing.
fn check_addresses(config: &Config, filter: &Filter, gathered: &Connected) -> Result<()> {
    if filter.targets.is_empty() && filter.excludes.is_empty() {
        return Ok(());
    }
    let mut known: Vec<Address> = Vec::new();
    for resource in &config.resources {
        known.push(resource.address.clone());
        match resource.spec.placement() {
            crate::kinds::Placement::Machines(kind) => {
                known.extend(config.select(kind.selector()).map(|m| {
                    Address::new(
                        &resource.address.kind,
                        &resource.address.name,
                        Some(&m.name),
                    )
                }))
            }
            // One instance, named by the resource's address (added above).
            crate::kinds::Placement::Cluster(_) => {}
        }
    }
    for (machine, facts) in &gathered.facts.hosts {
        if let Ok(record) = crate::managed::recorded(facts) {
            for address in record.project(&config.project).keys() {
                if let Ok(address) = Address::parse(address) {
                    known.push(Address::new(&address.kind, &address.name, Some(machine)));
                    known.push(address);
                }
            }
        }
    }
    let texts: Vec<String> = known.iter().map(ToString::to_string).collect();
    let names: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (flag, addresses) in [("target", &filter.targets), ("exclude", &filter.excludes)] {
        for address in addresses {
            if !known.iter().any(|k| address.covers(k)) {
                let help = match crate::base::diagnostic::nearest(
                    &address.to_string(),
                    names.iter().copied(),
                ) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("{}; `corral graph` lists them", crate::address::EXPECTED),
                };
                return Err(CommandError::UnknownAddress {
                    flag,
                    address: address.to_string(),
                    help,
                }
                .into());
            }
        }
    }
    Ok(())
}

/// `corral show PLANFILE`: the saved plan, printed as `plan` printed it.
pub fn show(args: &crate::cli::ShowArgs) -> Result<ExitStatus> {
    let saved = match SavedPlan::read(&args.planfile) {
        Some(read) => read?,
        None => {
            return Err(SavedPlanError::NotAPlan {
                path: args.planfile.clone(),
            }
            .into())
        }
    };
    let options = RenderOptions {
        expand: args.expand,
        heading: Heading::Plan,
    };
    print_plan(&saved.plan, args.format, options);
    Ok(ExitStatus::Success)
}

fn read_facts(path: &Path) -> Result<FactsFile> {
    FactsFile::read(path).map_err(miette::Report::new)
}

fn print_plan(plan: &Plan, format: Format, options: RenderOptions) {
    print!("{}", render_plan(plan, format, Style::detect(), options));
}

fn render_plan(plan: &Plan, format: Format, style: Style, options: RenderOptions) -> String {
    match format {
        Format::Human => render::human::render(plan, style, options),
        Format::Json => render::json::render(plan),
        Format::Markdown => render::markdown::render(plan, options),
    }
}

/// Why a plan that is not complete is an error, and what to do: the problems are where the
/// chosen format lists them, and leaving hosts out with `--limit` helps only for hosts that
/// could not be read (not for a resource that could not be planned).
fn incomplete_error(plan: &Plan, format: Format) -> miette::Report {
    let hosts = plan.unreachable.len();
    let resources = plan.errors.len();
    let listed = match format {
        Format::Human => "the problems are listed above",
        Format::Json => {
            "the problems are listed in the JSON plan on stdout, in its `unreachable` and `errors` fields"
        }
        Format::Markdown => {
            "the problems are listed in the Markdown plan on stdout, under \"The plan is incomplete\""
        }
    };
    let help = if hosts > 0 {
        format!("{listed}: fix them, or leave the hosts that could not be read out with --limit")
    } else {
        format!("{listed}: fix them and plan again")
    };
    let mut what = Vec::new();
    if hosts > 0 {
        what.push(format!("{} could not be read", hosts_text(hosts)));
    }
    if resources > 0 {
        what.push(match resources {
            1 => "1 resource instance could not be planned".to_owned(),
            n => format!("{n} resource instances could not be planned"),
        });
    }
    CommandError::IncompletePlan {
        what: what.join(" and "),
        help,
    }
    .into()
}

pub async fn plan(args: &PlanArgs) -> Result<ExitStatus> {
    plan_as(args, Heading::Plan).await
}

/// `plan`, or `drift` with its own heading: the same changes, told as what drifted.
async fn plan_as(args: &PlanArgs, heading: Heading) -> Result<ExitStatus> {
    if let Some(out) = &args.out {
        crate::output_file::check(out)?;
    }
    let connections = match args.facts {
        Some(_) => None,
        None => Some(Connections::open(&args.select.connect)?),
    };
    let planned = make_plan(&args.select, args.facts.as_deref(), connections.as_ref()).await?;
    // What a saved plan keeps of the facts, before the connections close.
    let probe_digests = args
        .out
        .as_ref()
        .map(|_| probe_digests(&planned.gathered.facts.hosts));
    let timings = timings_text(&args.select.connect, &planned.gathered);
    close(planned.gathered).await;
    let options = RenderOptions {
        expand: args.expand,
        heading,
    };
    // With `-o -` the saved plan is stdout, and the plan for the reader goes to stderr.
    let saving_to_stdout = args
        .out
        .as_deref()
        .is_some_and(crate::output_file::is_stdout);
    if saving_to_stdout {
        let style = Style::detect_stderr();
        eprint!(
            "{}",
            render_plan(&planned.plan, args.format, style, options)
        );
    } else {
        print_plan(&planned.plan, args.format, options);
    }
    print_timings(&timings);
    if !planned.plan.is_complete() {
        return Err(incomplete_error(&planned.plan, args.format));
    }
    if let Some(out) = &args.out {
        let digests = probe_digests.unwrap_or_default();
        save_plan(out, &args.select, &planned.plan, &planned.config, digests)?;
        if !saving_to_stdout {
            eprintln!(
                "Saved the plan to {}; apply it with `corral apply {}`.",
                out.display(),
                crate::shell::quote(&out.display().to_string())
            );
        }
    }
    Ok(if args.detailed_exitcode && !planned.plan.is_empty() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// `corral import`: see [`crate::import`].
pub async fn import(args: &crate::cli::ImportArgs) -> Result<ExitStatus> {
    let connections = Connections::open(&args.connect)?;
    let request = crate::import::Request {
        out: args.out.clone(),
        force: args.force,
        only: args.only.clone(),
        targets: args.target.clone(),
    };
    let report = crate::import::run(
        &request,
        &args.inventory,
        args.project.as_deref(),
        &connections.ssh,
        connections.gather,
    )
    .await?;
    print!("{report}");
    Ok(ExitStatus::Success)
}

pub async fn drift(args: &PlanArgs) -> Result<ExitStatus> {
    let detailed = PlanArgs {
        detailed_exitcode: true,
        ..args.clone()
    };
    plan_as(&detailed, Heading::Drift).await
}

pub async fn facts(args: &FactsArgs) -> Result<ExitStatus> {
    crate::output_file::check(&args.output)?;
    let config = load(&args.load, true)?;
    let graph = ResourceGraph::build(&config, &Filter::default()).map_err(miette::Report::new)?;
    let probes = gather::probes_by_machine(&config, &graph, &Filter::default());
    let connections = Connections::open(&args.connect)?;
    let mut gathered = gather::gather(&config, probes, &connections.ssh, connections.gather).await;
    gather::read_clusters(&config, &graph, &mut gathered, connections.gather.timeout).await;
    let file = FactsFile::new(&gathered.facts, Some(crate::kinds::seal_secrets(&config)));
    print_timings(&timings_text(&args.connect, &gathered));
    let gathered = close(gathered).await;
    let text = serde_json::to_string_pretty(&file).into_diagnostic()?;
    let written = write_output(&args.output, text.as_bytes())?;
    let saved = facts_saved(&gathered, &args.output);
    match written {
        crate::output_file::Written::Stdout => eprintln!("{saved}"),
        _ => println!("{saved}"),
    }
    for (address, message) in &gathered.unanswered {
        let message = crate::base::text::printable(message);
        eprintln!("Error: no manager of {address} answered: {message}");
    }
    for (machine, message) in &gathered.unreachable {
        let message = crate::base::text::printable(message);
        eprintln!("Error: host {machine} could not be read: {message}");
    }
    Ok(if file.unreachable.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Error
    })
}

/// What `facts` says it saved: the hosts (the clusters' facts, what a swarm's manager
/// said, are no host).
fn facts_saved(gathered: &crate::facts::Gathered, output: &Path) -> String {
    format!(
        "Saved the facts of {} to {}.",
        hosts_text(gathered.hosts.len()),
        output_name(output)
    )
}

/// `1 host`, `3 hosts`.
fn hosts_text(n: usize) -> String {
    match n {
        1 => "1 host".to_owned(),
        n => format!("{n} hosts"),
    }
}

/// How a message names an output file: `stdout` for `-`.
fn output_name(path: &Path) -> String {
    if crate::output_file::is_stdout(path) {
        "stdout".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Writes an output file (`-o`) through [`crate::output_file::write`].
fn write_output(path: &Path, bytes: &[u8]) -> Result<crate::output_file::Written> {
    Ok(crate::output_file::write(path, bytes)?)
}

/// Each machine's digest of each probe, for a saved plan to name what changed on a host.
fn probe_digests(
    facts: &BTreeMap<String, crate::facts::HostFacts>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    facts
        .iter()
        .map(|(key, facts)| (key.clone(), facts.probe_digests()))
        .collect()
}

/// Writes a saved plan (mode 0600) with absolute configuration paths.
fn save_plan(
    out: &Path,
    select: &SelectArgs,
    plan: &Plan,
    config: &Config,
    probe_digests: BTreeMap<String, BTreeMap<String, String>>,
) -> Result<()> {
    let paths = select
        .load
        .paths
        .iter()
        .map(|p| std::path::absolute(p).into_diagnostic())
        .collect::<Result<Vec<_>>>()?;
    let saved = SavedPlan {
        corral_saved_plan: SavedPlan::VERSION,
        paths,
        project: plan.project.clone(),
        ignore_unknown_kinds: select.load.ignore_unknown_kinds,
        targets: select.target.clone(),
        excludes: select.exclude.clone(),
        limit: select.limit.clone(),
        plan: plan.clone(),
        config_files: config.files.clone(),
        secrets: Some(crate::kinds::seal_secrets(config)),
        probe_digests,
    };
    let text = serde_json::to_string_pretty(&saved).into_diagnostic()?;
    write_output(out, text.as_bytes()).map(|_| ())
}

pub async fn apply(args: &ApplyArgs) -> Result<ExitStatus> {
    // `corral apply PLANFILE`: the saved plan's own selection, checked against fresh facts.
    let saved = match args.select.load.paths.as_slice() {
        [single] => SavedPlan::read(single).transpose()?,
        _ => None,
    };
    let select = match &saved {
        Some(saved) => SelectArgs {
            load: LoadArgs {
                paths: saved.paths.clone(),
                ignore_unknown_kinds: saved.ignore_unknown_kinds,
                project: Some(saved.project.clone()),
                allow_source_outside_config: args.select.load.allow_source_outside_config,
                module_path: args.select.load.module_path.clone(),
            },
            connect: args.select.connect.clone(),
            target: saved.targets.clone(),
            exclude: saved.excludes.clone(),
            limit: saved.limit.clone(),
        },
        None => args.select.clone(),
    };
    let connections = Connections::open(&select.connect)?;
    let planned = make_plan(&select, None, Some(&connections)).await?;
    let Planned {
        config,
        graph,
        filter,
        plan,
        gathered,
    } = planned;
    if let Some(saved) = &saved {
        let readers = |machine: &str, keys: &std::collections::BTreeSet<String>| {
            gather::readers(&config, &graph, machine, keys)
        };
        if let Some(why) = saved.staleness(&plan, &config, &gathered.facts, &readers) {
            close(gathered).await;
            return Err(SavedPlanError::Stale(why).into());
        }
        // Same configuration and facts give the same plan: what was reviewed. Anything
        // else means the file was edited, and nothing in it is trusted.
        if plan.resource_changes != saved.plan.resource_changes {
            close(gathered).await;
            return Err(SavedPlanError::Edited.into());
        }
    }
    let options = RenderOptions {
        expand: args.expand,
        heading: Heading::Plan,
    };
    print!("{}", render::human::render(&plan, Style::detect(), options));
    print_timings(&timings_text(&select.connect, &gathered));
    if !plan.is_complete() {
        close(gathered).await;
        return Err(
            incomplete_error(&plan, Format::Human).wrap_err("refusing to apply an incomplete plan")
        );
    }
    if plan.is_empty() {
        close(gathered).await;
        return Ok(ExitStatus::Success);
    }
    if saved.is_none() && !args.auto_approve && !confirm().await? {
        close(gathered).await;
        println!("Apply cancelled.");
        return Ok(ExitStatus::Error);
    }
    // The records this apply writes name this configuration as their project's owner: its
    // first apply makes its id, before any host is touched.
    let mut config = config;
    match config.identity.ensure() {
        Ok(true) => println!(
            "This configuration's id is now in {}: commit it, so that every clone (and CI) is known as the owner of project {}.",
            config.identity.file.display(),
            config.project
        ),
        Ok(false) => {}
        Err(e) => {
            close(gathered).await;
            return Err(e.into());
        }
    }
    let hosts: BTreeMap<String, Arc<dyn Host>> = gathered
        .connections
        .iter()
        .map(|(name, host)| (name.clone(), host.clone() as Arc<dyn Host>))
        .collect();
    let session = Session {
        config: &config,
        graph: &graph,
        filter: &filter,
        plan: &plan,
        facts: &gathered.facts,
        hosts: &hosts,
        interrupts: &connections.interrupts,
        options: SessionOptions {
            lock_timeout: Duration::from_secs(args.lock_timeout),
            take_over_stale_lock: args.take_over_stale_lock,
            facts_timeout: facts_timeout(&select.connect),
            parallelism: select.connect.parallelism,
        },
    };
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let drawer = tokio::spawn(render::progress::draw(receiver));
    let outcome = session.run(sender).await;
    let _ = drawer.await;
    drop(hosts);
    close(gathered).await;
    for (machine, problem) in &outcome.unreleased {
        eprintln!(
            "Error: the apply lock stays on {machine} ({problem}); once no apply runs there, remove it with `corral force-unlock {machine} {}`",
            paths_text(&select.load)
        );
    }
    let applied = match outcome.applied {
        Ok(applied) => applied,
        Err(SessionError::Lock(apply::lock::LockError::Interrupted)) => {
            eprintln!("Interrupted while waiting for the apply locks; nothing was changed and the locks taken are released.");
            return Ok(connections.interrupts.exit_status());
        }
        Err(error @ SessionError::Interrupted) => {
            eprintln!("{error}; the locks are released.");
            return Ok(connections.interrupts.exit_status());
        }
        // Each carries its code and help.
        Err(error) => return Err(error.into()),
    };
    print!(
        "{}",
        render::report::render(
            &applied.report,
            connections.interrupts.stop_requested(),
            Style::detect()
        )
    );
    if !applied.claimed.is_empty() {
        println!(
            "Claimed project {}'s records on {} for this configuration ({}): they named no owner yet.",
            config.project,
            applied.claimed.join(", "),
            config.identity.file.display()
        );
    }
    for message in &applied.record_errors {
        eprintln!("Error: {message}");
    }
    Ok(if connections.interrupts.stop_requested() {
        connections.interrupts.exit_status()
    } else if applied.report.succeeded()
        && applied.record_errors.is_empty()
        && outcome.unreleased.is_empty()
    {
        ExitStatus::Success
    } else {
        ExitStatus::Error
    })
}

/// The configuration paths as typed, for messages that suggest a command.
fn paths_text(load: &LoadArgs) -> String {
    load.paths
        .iter()
        .map(|p| crate::shell::quote(&p.display().to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The machines `force-unlock` was given (`None` for `--all`) and the configuration paths
/// after them.
fn unlock_selection(args: &ForceUnlockArgs) -> Result<(Option<Vec<String>>, LoadArgs)> {
    let mut load = args.load.clone();
    if args.all {
        return Ok((None, load));
    }
    if load.paths.len() < 2 {
        return Err(CommandError::UnlockWithoutMachines.into());
    }
    let first = load.paths.remove(0);
    let names: Vec<String> = first
        .to_string_lossy()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err(CommandError::UnlockNamesNoMachine.into());
    }
    Ok((Some(names), load))
}

/// What force-unlock found on one machine: its connection and the lock's holder (`None`
/// when it has no lock), or why it could not be read.
type LockFound = std::result::Result<(SshHost, Option<String>), apply::ApplyError>;

/// `corral force-unlock MACHINE[,MACHINE…] PATHS…` (or `--all PATHS…`): shows who holds each
/// machine's apply lock and, once confirmed, removes them (each only if it is still that
/// holder's).
pub async fn force_unlock(args: &ForceUnlockArgs) -> Result<ExitStatus> {
    let (named, load_args) = unlock_selection(args)?;
    let config = load(&load_args, true)?;
    let machines: Vec<crate::base::machine::Machine> = match named {
        None => config.machines.values().cloned().collect(),
        Some(names) => {
            let mut machines = Vec::new();
            for name in names {
                let Some(machine) = config.machines.get(&name) else {
                    let known: Vec<&str> = config.machines.keys().map(String::as_str).collect();
                    return Err(CommandError::UnknownMachine {
                        help: crate::base::diagnostic::suggestion(&name, &known, "machines"),
                        name,
                    }
                    .into());
                };
                if !machines
                    .iter()
                    .any(|m: &crate::base::machine::Machine| m.name == name)
                {
                    machines.push(machine.clone());
                }
            }
            machines
        }
    };
    if !args.force && !std::io::stdin().is_terminal() {
        return Err(CommandError::NoTerminal {
            command: "force-unlock",
            flag: "--force",
        }
        .into());
    }
    let connections = Connections::open(&args.connect)?;
    let timeout = connections.gather.timeout;
    let mut reading = tokio::task::JoinSet::new();
    for machine in machines {
        let ssh = connections.ssh.clone();
        reading.spawn(async move {
            let found: LockFound =
                match tokio::time::timeout(timeout, SshHost::connect(&machine, &ssh)).await {
                    Ok(Ok(host)) => match apply::lock::holder(&host).await {
                        Ok(holder) => Ok((host, holder)),
                        Err(e) => {
                            host.close().await;
                            Err(apply::ApplyError::LockUnreadable {
                                source: Box::new(e),
                            })
                        }
                    },
                    Ok(Err(e)) => Err(e.into()),
                    Err(_) => Err(apply::ApplyError::ConnectTimeout { within: timeout }),
                };
            (machine.name, found)
        });
    }
    let mut found: BTreeMap<String, LockFound> = BTreeMap::new();
    while let Some(joined) = reading.join_next().await {
        let (name, result) = joined.map_err(|e| miette!("internal error: {e}"))?;
        found.insert(name, result);
    }
    let mut failed = false;
    let mut locked: Vec<(String, SshHost, String)> = Vec::new();
    for (name, result) in found {
        match result {
            Ok((host, Some(holder))) => {
                println!(
                    "{name} is locked by {}.",
                    crate::base::text::printable(&holder)
                );
                locked.push((name, host, holder));
            }
            Ok((host, None)) => {
                host.close().await;
                println!(
                    "{name} has no apply lock ({} does not exist); nothing to do.",
                    apply::lock::PATH
                );
            }
            Err(e) => {
                failed = true;
                eprintln!(
                    "Error: {name}: {}",
                    crate::base::text::printable(&e.to_string())
                );
            }
        }
    }
    let failure = |failed: bool| {
        if failed {
            ExitStatus::Error
        } else {
            ExitStatus::Success
        }
    };
    if locked.is_empty() {
        return Ok(failure(failed));
    }
    if !args.force {
        let (which, question) = match locked.as_slice() {
            [(name, _, _)] => (
                name.clone(),
                "Do you really want to remove the lock? Only 'yes' will be accepted: ",
            ),
            _ => (
                "these machines".to_owned(),
                "Do you really want to remove these locks? Only 'yes' will be accepted: ",
            ),
        };
        println!("If an apply still runs there, removing its lock lets another apply change {which} at the same time.");
        if !ask(question).await? {
            for (_, host, _) in locked {
                host.close().await;
            }
            println!("Force-unlock cancelled.");
            return Ok(ExitStatus::Error);
        }
    }
    for (name, host, holder) in locked {
        let outcome = apply::lock::force_release(&host, &holder).await;
        host.close().await;
        match outcome {
            Ok(apply::lock::ForceRelease::Removed) => {
                println!("Removed the apply lock on {name}.");
            }
            Ok(apply::lock::ForceRelease::Gone) => {
                println!("The lock on {name} was released in the meantime; nothing to do.");
            }
            Ok(apply::lock::ForceRelease::Changed(now)) => {
                failed = true;
                eprintln!(
                    "Error: the lock on {name} changed in the meantime: it is now held by {}, and was left alone; run force-unlock again to see the new holder",
                    crate::base::text::printable(&now)
                );
            }
            Err(e) => {
                failed = true;
                eprintln!(
                    "Error: {name}: cannot remove the apply lock: {}",
                    crate::base::text::printable(&e.to_string())
                );
            }
        }
    }
    Ok(failure(failed))
}

async fn confirm() -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::NoTerminal {
            command: "apply",
            flag: "--auto-approve",
        }
        .into());
    }
    ask("\nDo you want to perform these actions? Only 'yes' will be accepted: ").await
}

/// Asks `question` on the terminal; true only for `yes`. The answer is read on a thread of
/// its own: while it waits, an interrupt still ends the run (see `main`).
async fn ask(question: &str) -> Result<bool> {
    print!("{question}");
    std::io::stdout().flush().into_diagnostic()?;
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|_| answer)
    })
    .await
    .into_diagnostic()?
    .into_diagnostic()?;
    Ok(answer.trim() == "yes")
}

/// Closes every SSH master connection, all at once; the facts they read are what is left.
async fn close(gathered: Connected) -> crate::facts::Gathered {
    let mut closing = tokio::task::JoinSet::new();
    for (_, host) in gathered.connections {
        if let Ok(host) = Arc::try_unwrap(host) {
            closing.spawn(host.close());
        }
    }
    while closing.join_next().await.is_some() {}
    gathered.facts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `facts` said "5 hosts" for 3: it counted the clusters' entries.
    #[test]
    fn saved_facts_count_hosts_not_clusters() {
        let file = FactsFile::read(Path::new("fixtures/facts/lab-cluster.json")).unwrap();
        assert_eq!(file.hosts.len(), 5, "3 hosts and 2 clusters recorded");
        assert_eq!(
            facts_saved(&file.gathered(), Path::new("out/facts.json")),
            "Saved the facts of 3 hosts to out/facts.json."
        );
        assert_eq!(
            facts_saved(&file.gathered(), Path::new("-")),
            "Saved the facts of 3 hosts to stdout."
        );
    }
}
