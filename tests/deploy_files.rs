//! The deployment files in `deploy/` and what `docs/deploy.md` shows of them: the same text
//! (the docs quote the files the Swarm run deploys, not a copy that drifts), the two
//! Dockerfiles ending in the same image, a `.dockerignore` that keeps the build context
//! small, and the Kubernetes manifests valid against the Kubernetes API schema, offline
//! (`tests/k8s/schema_check.py`). `scripts/swarm` deploys `deploy/stack.yml` and its override
//! files itself.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The fenced blocks of `docs/deploy.md` that follow a line `<!-- file: PATH -->`, with
/// their PATH.
fn quoted_files(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .trim()
            .strip_prefix("<!-- file: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or("");
        assert!(
            fence.starts_with("```"),
            "docs/deploy.md: `{line}` must be followed by a fenced block, not {fence:?}"
        );
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        out.push((path.to_string(), body));
    }
    out
}

#[test]
fn the_docs_show_the_deploy_files_verbatim() {
    let doc = read("docs/deploy.md");
    let quoted = quoted_files(&doc);
    for want in [
        "deploy/Dockerfile",
        "deploy/Dockerfile.prebuilt",
        "deploy/stack.yml",
        "deploy/stack.watch.yml",
        "deploy/stack.mesh.yml",
        "deploy/stack.tls.yml",
        "deploy/ssl_dist.conf",
        "deploy/prometheus.yml",
        "deploy/beamlink.rules.yml",
        "deploy/release/env.sh",
        "deploy/kubernetes.yaml",
    ] {
        let (_, body) = quoted
            .iter()
            .find(|(p, _)| p == want)
            .unwrap_or_else(|| panic!("docs/deploy.md does not quote {want}"));
        let file = read(want);
        assert!(
            *body == file,
            "docs/deploy.md's {want} differs from the file; copy the file into the docs:\n{}",
            first_difference(body, &file)
        );
    }
}

fn first_difference(a: &str, b: &str) -> String {
    for (n, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: docs {x:?}\n         file {y:?}", n + 1);
        }
    }
    format!(
        "the docs have {} lines, the file {}",
        a.lines().count(),
        b.lines().count()
    )
}

/// The final stage of a Dockerfile: its lines from the last `FROM` on, comments dropped.
fn final_stage(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM line");
    lines[last..].iter().map(|l| l.to_string()).collect()
}

#[test]
fn both_dockerfiles_build_the_same_image_without_a_frontend_pull() {
    let multi = read("deploy/Dockerfile");
    let prebuilt = read("deploy/Dockerfile.prebuilt");
    for (name, text) in [("Dockerfile", &multi), ("Dockerfile.prebuilt", &prebuilt)] {
        // A `# syntax=` line makes BuildKit pull a frontend image from a registry.
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("# syntax")),
            "deploy/{name} must not name a frontend"
        );
    }
    let a = final_stage(&multi);
    let b = final_stage(&prebuilt);
    assert_eq!(a[0], "FROM scratch");
    assert_eq!(b[0], "FROM scratch");
    assert_eq!(a[1], "COPY --from=build /beamlink /beamlink");
    assert_eq!(b[1], "COPY beamlink /beamlink");
    assert_eq!(a[2..], b[2..], "the runtime stages differ");
    assert!(a.contains(&"USER 10001:10001".to_string()));
    // Both strip the binary.
    assert!(
        multi.contains("strip "),
        "deploy/Dockerfile strips the binary"
    );
    assert!(
        prebuilt.contains("strip "),
        "deploy/Dockerfile.prebuilt says to strip it"
    );
}

#[test]
fn the_build_context_leaves_out_target_and_git() {
    let ignore = read(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    for must in ["target", ".git", "fuzz/target"] {
        assert!(
            lines.contains(&must),
            ".dockerignore must exclude {must}: {ignore}"
        );
    }
}

/// Runs the schema check on `files` with Debian's python3 (which has python3-kubernetes;
/// a `python3` earlier in PATH may not, and only `scripts/setup` installs it: interop tier).
#[cfg(feature = "interop")]
fn schema_check(files: &[std::path::PathBuf]) -> (bool, String) {
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(root().join("tests/k8s/schema_check.py"))
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("/usr/bin/python3: {e} (run scripts/setup)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("No module named"),
        "Debian's python3-kubernetes is not installed (run scripts/setup): {text}"
    );
    (out.status.success(), text)
}

#[cfg(feature = "interop")]
#[test]
fn the_kubernetes_manifests_hold_against_the_api_schema() {
    let (ok, text) = schema_check(&[root().join("deploy/kubernetes.yaml")]);
    assert!(ok, "{text}");
    assert!(text.contains("4 objects checked, 0 problems"), "{text}");

    // The check can fail: a misspelt field, a value of the wrong type and a missing
    // required field, each in a copy of the real manifests.
    let good = read("deploy/kubernetes.yaml");
    let dir = std::env::temp_dir().join(format!("beamlink-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = [
        (
            "misspelt",
            good.replace(
                "image: registry.example.com/beamlink",
                "imgae: x\n          image: registry.example.com/beamlink",
            ),
            "unknown field 'imgae'",
        ),
        (
            "wrong-type",
            good.replace("replicas: 3", "replicas: three"),
            "int expected",
        ),
        (
            "missing",
            good.replace("- name: beamlink\n", "- stdin: false\n"),
            "`name`, must not be `None`",
        ),
    ];
    let mut paths = Vec::new();
    for (what, text, _) in &broken {
        assert_ne!(*text, good, "{what}: the edit did not apply");
        let path = dir.join(format!("{what}.yaml"));
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let (ok, said) = schema_check(&paths);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "broken manifests accepted: {said}");
    for (what, _, expect) in &broken {
        assert!(
            said.lines()
                .any(|l| l.contains(&format!("{what}.yaml")) && l.contains(expect)),
            "{what}: no {expect:?} in {said}"
        );
    }
}

/// The Prometheus configuration and alert rules of `deploy/stack.watch.yml` are what
/// Prometheus itself accepts: `promtool check config` loads the rules file named in it too.
/// Fails on a malformed file, a rules file the config does not find, or a rule whose `expr`
/// is not PromQL.
#[cfg(feature = "interop")] // promtool comes from scripts/setup (Debian's prometheus)
#[test]
fn the_prometheus_files_are_what_prometheus_accepts() {
    let out = std::process::Command::new("promtool")
        .args(["check", "config"])
        .arg(root().join("deploy/prometheus.yml"))
        .output()
        .expect("promtool (Debian package prometheus; run scripts/setup)");
    assert!(
        out.status.success(),
        "promtool check config deploy/prometheus.yml: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("SUCCESS: 4 rules found"),
        "promtool did not load the 4 rules of deploy/beamlink.rules.yml: {said}"
    );
}
