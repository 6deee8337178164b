//! The stable fuzz driver, for machines without nightly and libFuzzer (CI):
//!
//! ```text
//! zones-fuzz [TARGET|all] [--secs N] [--seed N] [--corpus DIR]
//! ```
//!
//! For each target: every file of `fuzz/corpus/TARGET/` is run as is, then inputs made by a
//! small mutator (xorshift: bit flips, byte sets, inserts and deletes, duplicated and spliced
//! ranges, tokens of the target's dictionary) run for N seconds (default 20). A panic is a
//! crash: the input is saved to `fuzz/artifacts/TARGET/crash-<hash>` and reported. Prints
//! `fuzz: TARGET N execs, N crashes` per target; exits 1 when anything crashed.
//!
//! Without coverage feedback this finds less than libFuzzer (`cargo +nightly fuzz run --dev
//! TARGET --features libfuzzer` in fuzz/); the dictionaries and seeds keep it near the grammar.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zones_fuzz::TARGETS;

/// Tokens the mutator inserts, per target.
fn dictionary(target: &str) -> &'static [&'static str] {
    match target {
        "zonecfg" => &[
            "create",
            "create -b",
            "set ",
            "add ",
            "end",
            "select ",
            "remove ",
            "clear ",
            "commit",
            "verify",
            "revert -F",
            "delete -F",
            "info",
            "cancel",
            "exit",
            ";",
            "\n",
            "=",
            "\"",
            "(",
            ")",
            ",",
            "[",
            "]",
            "zonepath=/z",
            "capped-memory",
            "physical=",
            "swap=",
            "capped-cpu",
            "ncpus=",
            "anet",
            "linkname=",
            "lower-link=",
            "fs",
            "dir=",
            "special=",
            "type=",
            "options=",
            "net",
            "address=",
            "device",
            "match=",
            "rctl",
            "name=zone.max-lwps",
            "value=(priv=privileged,limit=",
            "action=deny)",
            "dataset",
            "attr",
            "limitpriv=",
            "default,sys_time",
            "brand=",
            "ip-type=exclusive",
            "autoboot=",
            "max-processes=",
            "cpu-shares=",
            "dedicated-cpu",
            "m",
            "g",
            "k",
            "1",
            "0",
            "-1",
            "18446744073709551616",
            "{\"zonename\":",
            "}",
        ],
        "qcow2_header" => &[
            "\0\0\0\x02",
            "\0\0\0\x03",
            "\0\0\0\x10",
            "\0\0\0\0\0\0\0\0",
            "\0\0\0\x68",
            "DATA",
            "\x05\x37\x7f\x77",
            "/etc/passwd",
        ],
        "layer_tar" => &[
            "ustar\0",
            "00",
            ".wh.",
            ".wh..wh..opq",
            "../",
            "/",
            "\0\0\0\0",
        ],
        _ => &[
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            "null",
            "true",
            "false",
            "0",
            "-1",
            "1e999",
            "18446744073709551615",
            "\"\"",
            "\"/\"",
            "\"..\"",
            "@M",
            "@C",
            "@L",
            "\n---\n",
            "\"mediaType\":",
            "\"digest\":",
            "\"layers\":",
            "\"manifests\":",
            "\"config\":",
            "\"Layers\":",
            "\"Config\":",
            "\"process\":",
            "\"args\":",
            "\"mounts\":",
            "\"options\":",
            "\"linux\":",
            "\"seccomp\":",
            "\"syscalls\":",
            "\"namespaces\":",
            "\"resources\":",
            "\"rlimits\":",
            "\"root\":",
            "\"path\":",
            "\"type\":",
            "\"SCMP_ACT_ERRNO\"",
            "\"SCMP_CMP_EQ\"",
            "\"SCMP_ARCH_X86_64\"",
            "\"rbind\"",
            "\"idmap\"",
            "\"uidMappings\":",
            "\"RLIMIT_NOFILE\"",
        ],
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A mutation of `input`, with the corpus for splicing.
fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dict: &[&str]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below(other.len() - i);
                    let at = rng.below(len + 1);
                    v.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            6 | 7 if !dict.is_empty() => {
                let tok = dict[rng.below(dict.len())].as_bytes();
                let at = rng.below(len + 1);
                if rng.below(2) == 0 || len == 0 {
                    v.splice(at..at, tok.iter().copied());
                } else {
                    let end = (at + tok.len()).min(len);
                    v.splice(at..end, tok.iter().copied());
                }
            }
            _ => {}
        }
    }
    v.truncate(64 * 1024);
    v
}

fn corpus_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|d| (p, d)))
        .collect()
}

/// Run one input; Some(message) when it panicked.
fn run_one(f: fn(&[u8]), data: &[u8]) -> Option<String> {
    match panic::catch_unwind(|| f(data)) {
        Ok(()) => None,
        Err(e) => Some(
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        ),
    }
}

fn save_crash(artifacts: &Path, target: &str, data: &[u8]) -> PathBuf {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    let dir = artifacts.join(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("crash-{:016x}", h.finish()));
    let _ = std::fs::write(&path, data);
    path
}

struct Opts {
    targets: Vec<String>,
    secs: u64,
    seed: u64,
    corpus: PathBuf,
}

fn parse_args() -> Result<Opts, String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut o = Opts {
        targets: Vec::new(),
        secs: 20,
        seed: 0x9e37_79b9_7f4a_7c15
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
        corpus: here.join("corpus"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--secs" => o.secs = val("--secs")?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--seed" => o.seed = val("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--corpus" => o.corpus = PathBuf::from(val("--corpus")?),
            "all" => o.targets.extend(TARGETS.iter().map(|t| t.0.to_string())),
            t if TARGETS.iter().any(|x| x.0 == t) => o.targets.push(t.to_string()),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; targets: all, {}",
                    TARGETS.map(|t| t.0).join(", ")
                ))
            }
        }
    }
    if o.targets.is_empty() {
        o.targets.extend(TARGETS.iter().map(|t| t.0.to_string()));
    }
    Ok(o)
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("zones-fuzz: {e}");
            std::process::exit(2);
        }
    };
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    // Panics are counted and their inputs saved; one line each instead of a backtrace.
    panic::set_hook(Box::new(|_| {}));
    let mut crashed = 0;
    for name in &o.targets {
        let f = TARGETS.iter().find(|t| t.0 == name).expect("checked").1;
        let dict = dictionary(name);
        let seeds = corpus_files(&o.corpus.join(name));
        let corpus: Vec<Vec<u8>> = seeds.iter().map(|s| s.1.clone()).collect();
        let mut rng = Rng(o.seed | 1);
        let mut execs = 0u64;
        let mut crashes = 0u64;
        let report = |data: &[u8], msg: String| {
            let path = save_crash(&artifacts, name, data);
            let first = msg.lines().next().unwrap_or("").to_string();
            eprintln!(
                "zones-fuzz: {name}: crash: {first} (input {})",
                path.display()
            );
        };
        for (path, data) in &seeds {
            execs += 1;
            if let Some(msg) = run_one(f, data) {
                crashes += 1;
                report(data, format!("{msg} [seed {}]", path.display()));
            }
        }
        let until = Instant::now() + Duration::from_secs(o.secs);
        let mut pool = corpus.clone();
        if pool.is_empty() {
            pool.push(Vec::new());
        }
        while Instant::now() < until {
            let base = pool[rng.below(pool.len())].clone();
            let input = mutate(&mut rng, &base, &corpus, dict);
            execs += 1;
            if let Some(msg) = run_one(f, &input) {
                crashes += 1;
                report(&input, msg);
            } else if rng.below(64) == 0 && pool.len() < 4096 {
                // Keep some mutants to mutate further (no coverage: a random walk).
                pool.push(input);
            }
        }
        println!("fuzz: {name} {execs} execs, {crashes} crashes");
        crashed += crashes;
    }
    zones_fuzz::cleanup();
    if crashed > 0 {
        std::process::exit(1);
    }
}
