//! runz-cri-client: a CRI client that does, over containerd's CRI socket, what kubelet does for a
//! pod whose RuntimeClass names the handler `runz`, and checks at every step that runz really
//! runs the pod (`runz state` / `runz list` under the handler's root, the processes, namespaces
//! and cgroups it made).
//!
//! Run by integration/cri.sh, which starts the private containerd and imports the images:
//!
//! ```text
//! runz-cri-client --socket SOCK --runz RUNZ --runz-root DIR --cgroup-parent PATH
//!                 --sandbox-image REF --image REF --log-dir DIR --name NAME
//! ```
//!
//! Prints one "ok - CHECK" or "not ok - CHECK" line per check (with "#   " detail lines),
//! "# sandbox id: ID" / "# container id: ID" for the caller's cleanup, and a closing
//! "cri-client: N passed, N failed". Exits 1 when a check failed, 2 on bad arguments. Every
//! CRI call is bounded (CALL_TIMEOUT); a failure of a step the next ones need ends the run after
//! the pod is stopped and removed.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerFilter, ContainerMetadata, ContainerState, ContainerStatsRequest,
    ContainerStatus, ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest,
    ExecSyncResponse, ImageSpec, ImageStatusRequest, KeyValue, LinuxContainerConfig,
    LinuxContainerResources, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, ListContainersRequest, ListPodSandboxRequest, NamespaceMode,
    NamespaceOption, PodSandboxConfig, PodSandboxMetadata, PodSandboxState,
    PodSandboxStatusRequest, RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest, VersionRequest,
};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Bound of one CRI call (StopContainer's grace period is far below it).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// StopContainer's grace period in seconds: SIGTERM, then SIGKILL after this.
const STOP_GRACE_SECS: i64 = 10;
/// The container's memory limit; the test reads it back from the cgroup runz made.
const MEMORY_LIMIT: i64 = 64 << 20;
/// The container's CPU quota per 100 ms period with the systemd driver (CPUQuota=50%).
const CPU_QUOTA: i64 = 50_000;
/// The container's name in the pod, and so its log directory.
const CONTAINER_NAME: &str = "app";

type Runtime = RuntimeServiceClient<Channel>;
type Images = ImageServiceClient<Channel>;

/// The command line.
#[derive(Debug, Clone)]
struct Args {
    socket: PathBuf,
    runz: PathBuf,
    runz_root: PathBuf,
    cgroup_parent: String,
    sandbox_image: String,
    image: String,
    log_dir: PathBuf,
    name: String,
}

impl Args {
    fn parse(argv: &[String]) -> Result<Args, String> {
        let mut map = HashMap::new();
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            let key = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            map.insert(key.to_string(), value.clone());
        }
        let mut take = |key: &str| map.remove(key).ok_or_else(|| format!("missing --{key}"));
        let args = Args {
            socket: take("socket")?.into(),
            runz: take("runz")?.into(),
            runz_root: take("runz-root")?.into(),
            cgroup_parent: take("cgroup-parent")?,
            sandbox_image: take("sandbox-image")?,
            image: take("image")?,
            log_dir: take("log-dir")?.into(),
            name: take("name")?,
        };
        if let Some(key) = map.keys().next() {
            return Err(format!("unknown option --{key}"));
        }
        Ok(args)
    }
}

/// Counts and prints the checks, TAP-like.
#[derive(Debug, Default)]
struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    /// Records a check: passes when `ok`; prints `detail` (one "#   " line each) when not.
    fn check(&mut self, name: &str, ok: bool, detail: impl FnOnce() -> String) -> bool {
        if ok {
            self.passed += 1;
            println!("ok - {name}");
        } else {
            self.failed += 1;
            println!("not ok - {name}");
            for line in detail().lines() {
                println!("#   {line}");
            }
        }
        ok
    }

    /// Records a check on a result; gives back the value when it is Ok.
    fn ok<T>(&mut self, name: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => {
                self.check(name, true, String::new);
                Some(v)
            }
            Err(e) => {
                self.check(name, false, || e);
                None
            }
        }
    }
}

/// A CRI call bounded by CALL_TIMEOUT; the gRPC status or the time-out as an error string.
async fn call<T>(
    fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(resp)) => Ok(resp.into_inner()),
        Ok(Err(status)) => Err(format!(
            "gRPC error {:?}: {}",
            status.code(),
            status.message()
        )),
        Err(_) => Err(format!("no answer in {}s", CALL_TIMEOUT.as_secs())),
    }
}

/// A gRPC channel over containerd's unix socket.
async fn connect(socket: &Path) -> Result<Channel, String> {
    let path = socket.to_path_buf();
    let connector = tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
    });
    // The URI is required by tonic and ignored by the connector.
    let endpoint = Endpoint::try_from("http://[::1]:0")
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(10));
    tokio::time::timeout(CALL_TIMEOUT, endpoint.connect_with_connector(connector))
        .await
        .map_err(|_| format!("connecting to {} timed out", socket.display()))?
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))
}

/// `runz --root <root> ARGS...`: (exit status, stdout, stderr).
fn runz(args: &Args, argv: &[&str]) -> (i32, String, String) {
    match Command::new(&args.runz)
        .arg("--root")
        .arg(&args.runz_root)
        .args(argv)
        .output()
    {
        Ok(out) => (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Err(e) => (
            -1,
            String::new(),
            format!("running {}: {e}", args.runz.display()),
        ),
    }
}

/// `runz state ID` as JSON, or why not.
fn runz_state(args: &Args, id: &str) -> Result<serde_json::Value, String> {
    let (rc, out, err) = runz(args, &["state", id]);
    if rc != 0 {
        return Err(format!("runz state {id}: exit status {rc}: {err}"));
    }
    serde_json::from_str(&out).map_err(|e| format!("runz state {id}: bad JSON ({e}): {out}"))
}

/// Checks that runz has container `id` running: gives back its init's host pid.
fn check_runz_running(r: &mut Report, args: &Args, what: &str, id: &str) -> Option<u32> {
    let state = runz_state(args, id);
    let status = state.as_ref().ok().and_then(|s| s["status"].as_str());
    let pid = state.as_ref().ok().and_then(|s| s["pid"].as_u64());
    let ok = status == Some("running") && pid.is_some_and(|p| p > 0);
    r.check(
        &format!("runz state {what}: running, under the handler's Root"),
        ok,
        || format!("{state:?}"),
    );
    pid.filter(|_| ok).and_then(|p| u32::try_from(p).ok())
}

/// Checks that runz no longer knows container `id`.
fn check_runz_gone(r: &mut Report, args: &Args, what: &str, id: &str) {
    let (rc, out, err) = runz(args, &["state", id]);
    r.check(
        &format!("runz state {what}: does not exist any more"),
        rc != 0 && err.contains("does not exist"),
        || format!("exit status {rc}\nstdout: {out}\nstderr: {err}"),
    );
}

/// The argv of host process `pid`, joined with spaces.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The namespace link of `pid` ("self" or a number), e.g. "net:[4026531840]".
fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

/// Whether /proc/<pid>/cgroup has a line ending in ":<path>".
fn in_cgroup(pid: u32, path: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|s| s.lines().any(|l| l.ends_with(&format!(":{path}"))))
        .unwrap_or(false)
}

/// systemd's slice path: `a-b-c.slice` is /a.slice/a-b.slice/a-b-c.slice.
fn expand_slice(slice: &str) -> String {
    let stem = slice.strip_suffix(".slice").unwrap_or(slice);
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        path.push_str(&format!("/{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    path
}

/// `systemctl show UNIT -p PROPS` as sorted "Key=value" lines joined by spaces.
fn unit_show(unit: &str, props: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", unit, "-p", props])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("<systemctl: {e}>"));
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    lines.join(" ")
}

fn image_spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}

/// Host network, pod-shared IPC, per-container pid namespaces: kubelet's defaults with
/// `hostNetwork: true`.
fn namespace_options() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// The pod: what kubelet sends for `hostNetwork: true`, `runtimeClassName: runz`.
struct Pod {
    config: PodSandboxConfig,
    log_directory: PathBuf,
    cgroup_parent: String,
}

impl Pod {
    fn new(args: &Args) -> Pod {
        let uid = format!("{}-uid", args.name);
        let namespace = "default".to_string();
        let name = args.name.clone();
        // Kubelet: /var/log/pods/<namespace>_<name>_<uid>; cgroupfs driver: .../pod<uid>;
        // systemd driver (a parent slice): <parent stem>-pod<uid, "-" as "_">.slice.
        let log_directory = args.log_dir.join(format!("{namespace}_{name}_{uid}"));
        let cgroup_parent = match args.cgroup_parent.strip_suffix(".slice") {
            Some(stem) => format!("{stem}-pod{}.slice", uid.replace('-', "_")),
            None => format!("{}/pod{uid}", args.cgroup_parent),
        };
        let labels = HashMap::from([
            ("io.kubernetes.pod.name".to_string(), name.clone()),
            ("io.kubernetes.pod.namespace".to_string(), namespace.clone()),
            ("io.kubernetes.pod.uid".to_string(), uid.clone()),
        ]);
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name,
                uid: uid.clone(),
                namespace,
                attempt: 0,
            }),
            hostname: String::new(), // host network: the node's hostname
            log_directory: log_directory.display().to_string(),
            labels,
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespace_options()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        Pod {
            config,
            log_directory,
            cgroup_parent,
        }
    }

    /// The container: a shell that logs, traps SIGTERM (so StopContainer's signal is seen)
    /// and idles.
    fn container_config(&self, args: &Args) -> ContainerConfig {
        let script = "trap 'echo got-TERM; exit 0' TERM; echo started; \
                      while :; do sleep 0.2; done";
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: CONTAINER_NAME.to_string(),
                attempt: 0,
            }),
            image: Some(image_spec(&args.image)),
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            envs: vec![KeyValue {
                key: "RUNZ_CRI".into(),
                value: "yes".into(),
            }],
            labels: HashMap::from([(
                "io.kubernetes.container.name".to_string(),
                CONTAINER_NAME.to_string(),
            )]),
            log_path: format!("{CONTAINER_NAME}/0.log"),
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources {
                    cpu_shares: 256,
                    memory_limit_in_bytes: MEMORY_LIMIT,
                    // systemd driver: a CPU quota too, read back as the scope's CPUQuota.
                    cpu_quota: if self.systemd() { CPU_QUOTA } else { 0 },
                    cpu_period: if self.systemd() { 100_000 } else { 0 },
                    ..Default::default()
                }),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(namespace_options()),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// With SystemdCgroup = true the pod's parent is a slice (kubelet's systemd driver).
    fn systemd(&self) -> bool {
        self.cgroup_parent.ends_with(".slice")
    }

    /// The cgroup of the sandbox or container `id`, as /proc/<pid>/cgroup shows it: cgroupfs
    /// `<parent>/<id>`; systemd the scope `cri-containerd-<id>.scope` in the expanded slice.
    fn cgroup_of(&self, id: &str) -> String {
        if self.systemd() {
            format!("{}/{}", expand_slice(&self.cgroup_parent), Self::scope(id))
        } else {
            format!("{}/{id}", self.cgroup_parent)
        }
    }

    /// containerd's unit for `id` with the systemd driver (cgroupsPath slice:cri-containerd:id).
    fn scope(id: &str) -> String {
        format!("cri-containerd-{id}.scope")
    }

    fn container_log(&self) -> PathBuf {
        self.log_directory.join(CONTAINER_NAME).join("0.log")
    }
}

/// Everything the test talks to.
struct Ctx {
    args: Args,
    rt: Runtime,
    images: Images,
    pod: Pod,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match Args::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("runz-cri-client: {e}");
            return ExitCode::from(2);
        }
    };
    let mut r = Report::default();
    match connect(&args.socket).await {
        Ok(channel) => {
            let mut ctx = Ctx {
                rt: RuntimeServiceClient::new(channel.clone()),
                images: ImageServiceClient::new(channel),
                pod: Pod::new(&args),
                args,
            };
            run(&mut r, &mut ctx).await;
        }
        Err(e) => {
            r.check("connect to the CRI socket", false, || e);
        }
    }
    println!("cri-client: {} passed, {} failed", r.passed, r.failed);
    if r.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The whole kubelet sequence.
async fn run(r: &mut Report, ctx: &mut Ctx) {
    if !version(r, ctx).await || !image_status(r, ctx).await {
        return;
    }
    let Some(sandbox_id) = run_pod_sandbox(r, ctx).await else {
        return;
    };
    if let Some(sandbox_pid) = check_sandbox(r, ctx, &sandbox_id).await {
        container_lifecycle(r, ctx, &sandbox_id, sandbox_pid).await;
    }
    stop_and_remove_pod(r, ctx, &sandbox_id).await;
}

async fn version(r: &mut Report, ctx: &mut Ctx) -> bool {
    let req = VersionRequest {
        version: "v1".into(),
    };
    let Some(v) = r.ok("Version", call(ctx.rt.version(req)).await) else {
        return false;
    };
    r.check(
        "Version: containerd, CRI API v1",
        v.runtime_name == "containerd" && v.runtime_api_version == "v1",
        || format!("{v:?}"),
    )
}

/// ImageStatus of both images (kubelet's check before it would pull).
async fn image_status(r: &mut Report, ctx: &mut Ctx) -> bool {
    let mut all = true;
    for image in [ctx.args.sandbox_image.clone(), ctx.args.image.clone()] {
        let req = ImageStatusRequest {
            image: Some(image_spec(&image)),
            verbose: false,
        };
        let resp = call(ctx.images.image_status(req)).await;
        let tags = resp
            .as_ref()
            .ok()
            .and_then(|s| s.image.as_ref())
            .map(|i| i.repo_tags.clone())
            .unwrap_or_default();
        all &= r.check(
            &format!("ImageStatus {image}: present, no pull needed"),
            tags.contains(&image),
            || format!("{resp:?}"),
        );
    }
    all
}

async fn run_pod_sandbox(r: &mut Report, ctx: &mut Ctx) -> Option<String> {
    // Kubelet makes the pod's log directory before it asks for the sandbox.
    let mkdir = std::fs::create_dir_all(&ctx.pod.log_directory)
        .map_err(|e| format!("mkdir {}: {e}", ctx.pod.log_directory.display()));
    r.ok("kubelet's pod log directory", mkdir)?;
    let req = RunPodSandboxRequest {
        config: Some(ctx.pod.config.clone()),
        runtime_handler: "runz".into(),
    };
    let resp = r.ok(
        "RunPodSandbox (runtime_handler runz, host network)",
        call(ctx.rt.run_pod_sandbox(req)).await,
    )?;
    println!("# sandbox id: {}", resp.pod_sandbox_id);
    Some(resp.pod_sandbox_id)
}

/// PodSandboxStatus, and the sandbox's container as runz runs it; gives back its host pid.
async fn check_sandbox(r: &mut Report, ctx: &mut Ctx, id: &str) -> Option<u32> {
    let req = PodSandboxStatusRequest {
        pod_sandbox_id: id.to_string(),
        verbose: false,
    };
    let status = call(ctx.rt.pod_sandbox_status(req))
        .await
        .map(|s| s.status.unwrap_or_default());
    let (state, handler, net) = match &status {
        Ok(s) => (
            s.state,
            s.runtime_handler.clone(),
            s.linux
                .as_ref()
                .and_then(|l| l.namespaces.as_ref())
                .and_then(|n| n.options.as_ref())
                .map(|o| o.network),
        ),
        Err(_) => (-1, String::new(), None),
    };
    r.check(
        "PodSandboxStatus: READY, handler runz, network NODE",
        state == PodSandboxState::SandboxReady as i32
            && handler == "runz"
            && net == Some(NamespaceMode::Node as i32),
        || format!("{status:?}"),
    );
    let pid = check_runz_running(r, &ctx.args, "of the sandbox", id)?;
    let argv = cmdline(pid);
    r.check(
        "the sandbox's init is the pause-like image's entrypoint",
        argv == "/bin/sleep 2147483647",
        || format!("/proc/{pid}/cmdline: {argv:?}"),
    );
    let (host_net, sandbox_net) = (ns_link("self", "net"), ns_link(&pid.to_string(), "net"));
    r.check(
        "the sandbox is in the host's network namespace (NODE)",
        host_net == sandbox_net,
        || format!("host {host_net}, sandbox {sandbox_net}"),
    );
    let (host_ipc, sandbox_ipc) = (ns_link("self", "ipc"), ns_link(&pid.to_string(), "ipc"));
    r.check(
        "the sandbox has its own IPC namespace (shared by the pod)",
        host_ipc != sandbox_ipc,
        || format!("host {host_ipc}, sandbox {sandbox_ipc}"),
    );
    let cg = ctx.pod.cgroup_of(id);
    r.check(
        "the sandbox is in the cgroup <cgroup_parent>/<sandbox id> (systemd: its scope)",
        in_cgroup(pid, &cg),
        || {
            format!(
                "want a line ending in :{cg}\n/proc/{pid}/cgroup:\n{}",
                std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
            )
        },
    );
    Some(pid)
}

/// CreateContainer .. RemoveContainer, with checks in between.
async fn container_lifecycle(r: &mut Report, ctx: &mut Ctx, sandbox_id: &str, sandbox_pid: u32) {
    let Some(id) = create_container(r, ctx, sandbox_id).await else {
        return;
    };
    if start_container(r, ctx, &id).await {
        if let Some(pid) = check_container_running(r, ctx, sandbox_id, &id).await {
            exec_sync(r, ctx, &id, sandbox_pid, pid).await;
            container_stats(r, ctx, &id).await;
        }
        stop_container(r, ctx, &id).await;
    }
    remove_container(r, ctx, &id).await;
}

async fn create_container(r: &mut Report, ctx: &mut Ctx, sandbox_id: &str) -> Option<String> {
    // Kubelet makes the container's log directory (<pod log dir>/<container name>).
    let dir = ctx.pod.log_directory.join(CONTAINER_NAME);
    let mkdir = std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()));
    r.ok("kubelet's container log directory", mkdir)?;
    let req = CreateContainerRequest {
        pod_sandbox_id: sandbox_id.to_string(),
        config: Some(ctx.pod.container_config(&ctx.args)),
        sandbox_config: Some(ctx.pod.config.clone()),
    };
    let resp = r.ok("CreateContainer", call(ctx.rt.create_container(req)).await)?;
    println!("# container id: {}", resp.container_id);
    let status = container_status(ctx, &resp.container_id).await;
    r.check(
        "ContainerStatus after create: CREATED",
        status
            .as_ref()
            .is_ok_and(|s| s.state == ContainerState::ContainerCreated as i32),
        || format!("{status:?}"),
    );
    Some(resp.container_id)
}

async fn container_status(ctx: &mut Ctx, id: &str) -> Result<ContainerStatus, String> {
    let req = ContainerStatusRequest {
        container_id: id.to_string(),
        verbose: false,
    };
    call(ctx.rt.container_status(req)).await.and_then(|s| {
        s.status
            .ok_or_else(|| "no status in the response".to_string())
    })
}

async fn start_container(r: &mut Report, ctx: &mut Ctx, id: &str) -> bool {
    let req = StartContainerRequest {
        container_id: id.to_string(),
    };
    r.ok("StartContainer", call(ctx.rt.start_container(req)).await)
        .is_some()
}

/// ContainerStatus, ListContainers, and runz's view of the running pod; gives back the
/// container's host pid.
async fn check_container_running(
    r: &mut Report,
    ctx: &mut Ctx,
    sandbox_id: &str,
    id: &str,
) -> Option<u32> {
    let status = container_status(ctx, id).await;
    r.check(
        "ContainerStatus after start: RUNNING",
        status
            .as_ref()
            .is_ok_and(|s| s.state == ContainerState::ContainerRunning as i32),
        || format!("{status:?}"),
    );
    let req = ListContainersRequest {
        filter: Some(ContainerFilter {
            pod_sandbox_id: sandbox_id.to_string(),
            ..Default::default()
        }),
    };
    let list = call(ctx.rt.list_containers(req)).await;
    r.check(
        "ListContainers of the pod: the container, RUNNING",
        list.as_ref().is_ok_and(|l| {
            l.containers.len() == 1
                && l.containers[0].id == id
                && l.containers[0].state == ContainerState::ContainerRunning as i32
        }),
        || format!("{list:?}"),
    );
    check_runz_list(r, &ctx.args, &[sandbox_id, id]);
    let pid = check_runz_running(r, &ctx.args, "of the container", id)?;
    check_container_cgroup(r, ctx, id, pid);
    Some(pid)
}

/// `runz list --format json` has exactly the pod's sandbox and container, both running.
fn check_runz_list(r: &mut Report, args: &Args, ids: &[&str]) {
    let (rc, out, err) = runz(args, &["list", "--format", "json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_default();
    let mut running: Vec<&str> = list
        .iter()
        .filter(|c| c["status"] == "running")
        .filter_map(|c| c["id"].as_str())
        .collect();
    running.sort_unstable();
    let mut want = ids.to_vec();
    want.sort_unstable();
    r.check(
        "runz list: the sandbox and the container, both running",
        rc == 0 && list.len() == ids.len() && running == want,
        || format!("exit status {rc}\nstdout: {out}\nstderr: {err}"),
    );
}

/// The container is in <cgroup_parent>/<id>, with the memory limit CreateContainer asked for.
fn check_container_cgroup(r: &mut Report, ctx: &Ctx, id: &str, pid: u32) {
    let cg = ctx.pod.cgroup_of(id);
    r.check(
        "the container is in the cgroup <cgroup_parent>/<container id> (systemd: its scope)",
        in_cgroup(pid, &cg),
        || {
            format!(
                "want a line ending in :{cg}\n/proc/{pid}/cgroup:\n{}",
                std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
            )
        },
    );
    let v1 = format!("/sys/fs/cgroup/memory{cg}/memory.limit_in_bytes");
    let v2 = format!("/sys/fs/cgroup/unified{cg}/memory.max");
    let pure = format!("/sys/fs/cgroup{cg}/memory.max");
    let limit = std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .or_else(|_| std::fs::read_to_string(&pure))
        .map(|s| s.trim().to_string());
    r.check(
        "the container's memory limit (linux.resources) is in its cgroup",
        limit.as_ref().is_ok_and(|l| *l == MEMORY_LIMIT.to_string()),
        || format!("{v1}, {v2} or {pure}: {limit:?}, want {MEMORY_LIMIT}"),
    );
    if ctx.pod.systemd() {
        let unit = Pod::scope(id);
        let show = unit_show(
            &unit,
            "MemoryMax,CPUQuotaPerSecUSec,Slice,Delegate,ActiveState",
        );
        let want = format!(
            "ActiveState=active CPUQuotaPerSecUSec={}ms Delegate=yes MemoryMax={MEMORY_LIMIT} \
             Slice={}",
            CPU_QUOTA * 10 / 1000,
            ctx.pod.cgroup_parent
        );
        r.check(
            "systemd shows the container's scope in the pod's slice with its limits",
            show == want,
            || format!("systemctl show {unit}: {show}\nwant: {want}"),
        );
    }
}

async fn exec(ctx: &mut Ctx, id: &str, script: &str) -> Result<ExecSyncResponse, String> {
    let req = ExecSyncRequest {
        container_id: id.to_string(),
        cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
        timeout: 20,
    };
    call(ctx.rt.exec_sync(req)).await
}

/// ExecSync: output, exit codes, and that the exec runs in the container's namespaces.
async fn exec_sync(r: &mut Report, ctx: &mut Ctx, id: &str, sandbox_pid: u32, pid: u32) {
    let script = "echo exec-ok $RUNZ_CRI; id -u; readlink /proc/self/ns/ipc; \
                  readlink /proc/self/ns/net; readlink /proc/self/ns/pid; \
                  ps -o pid,args | awk '$1 == 1 { $1 = \"\"; print substr($0, 2) }'";
    let resp = exec(ctx, id, script).await;
    let stdout = resp
        .as_ref()
        .map(|e| String::from_utf8_lossy(&e.stdout).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = stdout.lines().collect();
    r.check(
        "ExecSync: output and exit code 0, the container's env",
        resp.as_ref().is_ok_and(|e| e.exit_code == 0)
            && lines.first() == Some(&"exec-ok yes")
            && lines.get(1) == Some(&"0"),
        || format!("{resp:?}"),
    );
    let want = [
        ns_link(&sandbox_pid.to_string(), "ipc"),
        ns_link("self", "net"),
        ns_link(&pid.to_string(), "pid"),
    ];
    r.check(
        "ExecSync: in the pod's IPC, the host's network, the container's pid namespace",
        lines.get(2..5).is_some_and(|got| got == want),
        || format!("want {want:?}\nstdout: {stdout}"),
    );
    r.check(
        "ExecSync: pid 1 of the container is its command",
        lines
            .get(5)
            .is_some_and(|l| l.starts_with("/bin/sh -c trap")),
        || format!("stdout: {stdout}"),
    );
    let resp = exec(ctx, id, "echo to-stderr >&2; exit 3").await;
    r.check(
        "ExecSync: a failing command's exit code and stderr",
        resp.as_ref()
            .is_ok_and(|e| e.exit_code == 3 && e.stderr == b"to-stderr\n" && e.stdout.is_empty()),
        || format!("{resp:?}"),
    );
}

/// ContainerStats: the shim reads the cgroup runz made; memory and CPU must be non-zero.
async fn container_stats(r: &mut Report, ctx: &mut Ctx, id: &str) {
    let req = ContainerStatsRequest {
        container_id: id.to_string(),
    };
    let resp = call(ctx.rt.container_stats(req)).await;
    let stats = resp.as_ref().ok().and_then(|s| s.stats.clone());
    let memory = stats
        .as_ref()
        .and_then(|s| s.memory.as_ref())
        .and_then(|m| m.working_set_bytes.as_ref())
        .map_or(0, |v| v.value);
    let cpu = stats
        .as_ref()
        .and_then(|s| s.cpu.as_ref())
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .map_or(0, |v| v.value);
    let attr_id = stats
        .as_ref()
        .and_then(|s| s.attributes.as_ref())
        .map(|a| a.id.clone());
    r.check(
        "ContainerStats: non-zero memory working set and CPU time",
        attr_id.as_deref() == Some(id) && memory > 0 && cpu > 0,
        || format!("{resp:?}"),
    );
}

/// StopContainer: SIGTERM reaches the container's trap, which exits 0 within the grace period.
async fn stop_container(r: &mut Report, ctx: &mut Ctx, id: &str) {
    let req = StopContainerRequest {
        container_id: id.to_string(),
        timeout: STOP_GRACE_SECS,
    };
    if r.ok("StopContainer", call(ctx.rt.stop_container(req)).await)
        .is_none()
    {
        return;
    }
    let status = container_status(ctx, id).await;
    r.check(
        "ContainerStatus after stop: EXITED with code 0 (SIGTERM trapped)",
        status.as_ref().is_ok_and(|s| {
            s.state == ContainerState::ContainerExited as i32
                && s.exit_code == 0
                && s.reason == "Completed"
        }),
        || format!("{status:?}"),
    );
    let log_path = ctx.pod.container_log();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let msgs: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(" stdout F ").map(|(_, m)| m))
        .collect();
    r.check(
        "the container's log (CRI format) has its output, before and after SIGTERM",
        msgs == ["started", "got-TERM"],
        || format!("{}:\n{log}", log_path.display()),
    );
}

async fn remove_container(r: &mut Report, ctx: &mut Ctx, id: &str) {
    let req = RemoveContainerRequest {
        container_id: id.to_string(),
    };
    if r.ok("RemoveContainer", call(ctx.rt.remove_container(req)).await)
        .is_none()
    {
        return;
    }
    let status = container_status(ctx, id).await;
    r.check(
        "ContainerStatus after remove: not found",
        status.as_ref().is_err_and(|e| e.contains("NotFound")),
        || format!("{status:?}"),
    );
    check_runz_gone(r, &ctx.args, "of the container", id);
    let cg = if ctx.pod.systemd() {
        format!("/sys/fs/cgroup{}", ctx.pod.cgroup_of(id))
    } else {
        format!("/sys/fs/cgroup/memory{}/{id}", ctx.pod.cgroup_parent)
    };
    r.check(
        "the container's cgroup is gone",
        !Path::new(&cg).exists(),
        || format!("{cg} still exists"),
    );
    if ctx.pod.systemd() {
        let unit = Pod::scope(id);
        let state = unit_show(&unit, "LoadState");
        r.check(
            "systemd no longer has the container's scope",
            state == "LoadState=not-found",
            || format!("systemctl show {unit}: {state}"),
        );
    }
}

/// StopPodSandbox, RemovePodSandbox; runz no longer has the sandbox.
async fn stop_and_remove_pod(r: &mut Report, ctx: &mut Ctx, id: &str) {
    let req = StopPodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    };
    if r.ok("StopPodSandbox", call(ctx.rt.stop_pod_sandbox(req)).await)
        .is_some()
    {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: false,
        };
        let status = call(ctx.rt.pod_sandbox_status(req)).await;
        r.check(
            "PodSandboxStatus after stop: NOTREADY",
            status.as_ref().is_ok_and(|s| {
                s.status
                    .as_ref()
                    .is_some_and(|s| s.state == PodSandboxState::SandboxNotready as i32)
            }),
            || format!("{status:?}"),
        );
        check_runz_gone(r, &ctx.args, "of the sandbox (after StopPodSandbox)", id);
    }
    let req = RemovePodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    };
    if r.ok(
        "RemovePodSandbox",
        call(ctx.rt.remove_pod_sandbox(req)).await,
    )
    .is_none()
    {
        return;
    }
    let list = call(ctx.rt.list_pod_sandbox(ListPodSandboxRequest::default())).await;
    r.check(
        "ListPodSandbox after remove: the pod is gone",
        list.as_ref()
            .is_ok_and(|l| l.items.iter().all(|s| s.id != id)),
        || format!("{list:?}"),
    );
    let (rc, out, err) = runz(&ctx.args, &["list", "-q"]);
    r.check(
        "runz list after remove: empty",
        rc == 0 && out.trim().is_empty(),
        || format!("exit status {rc}\nstdout: {out}\nstderr: {err}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    const FULL: &str = "--socket /s --runz /r --runz-root /root --cgroup-parent /cg \
                        --sandbox-image p --image i --log-dir /l --name n";

    #[test]
    fn parses_every_option() {
        let a = Args::parse(&argv(FULL)).unwrap();
        assert_eq!(a.socket, PathBuf::from("/s"));
        assert_eq!(a.runz_root, PathBuf::from("/root"));
        assert_eq!(a.cgroup_parent, "/cg");
        assert_eq!(a.sandbox_image, "p");
        assert_eq!(a.name, "n");
    }

    #[test]
    fn rejects_missing_unknown_and_valueless_options() {
        let e = Args::parse(&argv("--socket /s")).unwrap_err();
        assert!(e.starts_with("missing --"), "{e}");
        let e = Args::parse(&argv(&format!("{FULL} --bogus x"))).unwrap_err();
        assert_eq!(e, "unknown option --bogus");
        let e = Args::parse(&argv("--socket")).unwrap_err();
        assert_eq!(e, "--socket needs a value");
        let e = Args::parse(&argv("socket")).unwrap_err();
        assert_eq!(e, "unexpected argument \"socket\"");
    }

    #[test]
    fn pod_config_is_kubelets_layout() {
        let a = Args::parse(&argv(FULL)).unwrap();
        let pod = Pod::new(&a);
        assert_eq!(pod.cgroup_parent, "/cg/podn-uid");
        assert_eq!(pod.log_directory, PathBuf::from("/l/default_n_n-uid"));
        assert_eq!(
            pod.container_log(),
            PathBuf::from("/l/default_n_n-uid/app/0.log")
        );
        let ns = pod.config.linux.unwrap().security_context.unwrap();
        assert_eq!(
            ns.namespace_options.unwrap().network,
            NamespaceMode::Node as i32
        );
    }

    #[test]
    fn a_slice_parent_is_kubelets_systemd_layout() {
        let full = FULL.replace("--cgroup-parent /cg", "--cgroup-parent runz_it_1.slice");
        let pod = Pod::new(&Args::parse(&argv(&full)).unwrap());
        assert_eq!(pod.cgroup_parent, "runz_it_1-podn_uid.slice");
        assert!(pod.systemd());
        assert_eq!(
            pod.cgroup_of("abc"),
            "/runz_it_1.slice/runz_it_1-podn_uid.slice/cri-containerd-abc.scope"
        );
        let pod = Pod::new(&Args::parse(&argv(FULL)).unwrap());
        assert_eq!(pod.cgroup_of("abc"), "/cg/podn-uid/abc");
    }

    #[test]
    fn report_counts_checks() {
        let mut r = Report::default();
        assert!(r.check("a", true, String::new));
        assert!(!r.check("b", false, || "why".into()));
        assert_eq!(r.ok("c", Ok::<_, String>(5)), Some(5));
        assert_eq!(r.ok::<u8>("d", Err("no".into())), None);
        assert_eq!((r.passed, r.failed), (2, 2));
    }
}
