//! Hostile input: huge, deep, binary, invalid. Always a classification or a clear error, never a
//! panic, a stack overflow or a hang. Deep inputs run on a thread with exactly
//! `REQUIRED_STACK_BYTES`, as the webhook's classifier threads do.

use std::time::{Duration, Instant};

use gaia_classifier::Error;
#[path = "support/table.rs"]
#[allow(dead_code)]
mod table;

use gaia_classifier::{classify, testing, Classification, FindingKind, Limits, SourceFile};
use gaia_contract::ExecutionMode;

fn on_classifier_thread(files: Vec<SourceFile>) -> Result<Classification, Error> {
    table::on_classifier_thread(move || classify(&files, &Limits::default()))
}

fn one(src: impl Into<Vec<u8>>) -> Result<Classification, Error> {
    on_classifier_thread(vec![SourceFile::new("func.py", src)])
}

#[test]
fn a_hundred_thousand_open_brackets() {
    let src = format!("import torch\nx = {}", "[".repeat(100_000));
    let c = one(src).expect("classified");
    assert!(c.fallback);
    assert_eq!(c.mode, ExecutionMode::CpuPreferred);
}

#[test]
fn a_hundred_thousand_balanced_brackets_and_chains() {
    let n = 100_000;
    for src in [
        format!("import torch\nx = {}1{}\n", "[".repeat(n), "]".repeat(n)),
        format!("import torch\nx = 1{}\n", "+1".repeat(n)),
        format!("import torch\nx = a{}\n", ".b".repeat(n)),
        format!("import torch\nx = {}1\n", "lambda: ".repeat(n)),
        format!(
            "import torch\nif a:\n    pass\n{}",
            "elif b:\n    pass\n".repeat(n / 10)
        ),
    ] {
        let started = Instant::now();
        let c = one(src).expect("classified");
        assert!(c.fallback, "{}", c.rationale);
        assert!(c
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::ParseFallback && f.detail.contains("nesting")));
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

/// Builds a source of nesting `n`.
type Maker = Box<dyn Fn(usize) -> String>;

/// The largest `n` whose source the nesting check still lets through to the parser.
fn largest_accepted(make: &dyn Fn(usize) -> String) -> usize {
    let limit = Limits::default().max_nesting;
    let (mut lo, mut hi) = (1usize, 4096usize);
    assert!(testing::nesting_bound(&make(hi)) > limit);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if testing::nesting_bound(&make(mid)) <= limit {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[test]
fn the_deepest_accepted_trees_parse_on_the_documented_stack() {
    let makers: Vec<(&str, Maker)> = vec![
        (
            "brackets",
            Box::new(|n| format!("x = {}1{}\n", "[".repeat(n), "]".repeat(n))),
        ),
        (
            "parens",
            Box::new(|n| format!("x = {}1{}\n", "(".repeat(n), ")".repeat(n))),
        ),
        (
            "dicts",
            Box::new(|n| format!("x = {}1{}\n", "{1: ".repeat(n), "}".repeat(n))),
        ),
        (
            "plus chain",
            Box::new(|n| format!("x = 1{}\n", "+1".repeat(n))),
        ),
        (
            "power chain",
            Box::new(|n| format!("x = 2{}\n", "**2".repeat(n))),
        ),
        (
            "attribute chain",
            Box::new(|n| format!("x = a{}\n", ".b".repeat(n))),
        ),
        (
            "call chain",
            Box::new(|n| format!("x = f{}\n", "()".repeat(n))),
        ),
        (
            "subscript chain",
            Box::new(|n| format!("x = a{}\n", "[0]".repeat(n))),
        ),
        (
            "not chain",
            Box::new(|n| format!("x = {}a\n", "not ".repeat(n))),
        ),
        (
            "minus chain",
            Box::new(|n| format!("x = {}a\n", "- ".repeat(n))),
        ),
        (
            "ternary chain",
            Box::new(|n| format!("x = {}c\n", "a if b else ".repeat(n))),
        ),
        (
            "lambda chain",
            Box::new(|n| format!("x = {}1\n", "lambda a, b=2: ".repeat(n))),
        ),
        (
            "await chain",
            Box::new(|n| format!("async def f():\n    return {}x\n", "await ".repeat(n))),
        ),
        (
            "f-string",
            Box::new(|n| format!("x = f'{{{}a}}'\n", "-".repeat(n))),
        ),
        (
            "comprehensions",
            Box::new(|n| format!("x = {}1{}\n", "[".repeat(n), " for _ in y]".repeat(n))),
        ),
        (
            "elif chain",
            Box::new(|n| format!("if a:\n    pass\n{}", "elif b:\n    x.cuda()\n".repeat(n))),
        ),
        (
            "indentation",
            Box::new(|n| {
                let mut s = String::new();
                for i in 0..n {
                    s.push_str(&" ".repeat(i));
                    s.push_str("if x:\n");
                }
                s.push_str(&" ".repeat(n));
                s.push_str("y = -(-(-(-1)))\n");
                s
            }),
        ),
        (
            "nested try/except",
            Box::new(|n| {
                let mut s = String::new();
                for i in 0..n {
                    s.push_str(&" ".repeat(i));
                    s.push_str("try:\n");
                }
                for i in (0..n).rev() {
                    s.push_str(&" ".repeat(i + 1));
                    s.push_str("pass\n");
                    s.push_str(&" ".repeat(i));
                    s.push_str("except E:\n");
                    s.push_str(&" ".repeat(i + 1));
                    s.push_str("x.to(device)\n");
                }
                s
            }),
        ),
    ];
    for (name, make) in &makers {
        let n = largest_accepted(make.as_ref());
        let src = format!("import torch\n{}", make(n));
        let c = one(src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !c.findings
                .iter()
                .any(|f| f.kind == FindingKind::ParseFallback && f.detail.contains("nesting")),
            "{name} at n={n} was not parsed: {}",
            c.rationale
        );
        eprintln!("{name}: deepest accepted n = {n}, parsed: {}", !c.fallback);
    }
}

#[test]
fn a_ten_mib_file_is_a_clear_error() {
    let src = "x = 1\n".repeat((10 << 20) / 6);
    match one(src) {
        Err(Error::InputTooLarge { size, limit, .. }) => assert!(size > limit),
        other => panic!("{other:?}"),
    }
}

#[test]
fn too_many_files_is_a_clear_error() {
    let files: Vec<SourceFile> = (0..Limits::default().max_files + 1)
        .map(|i| SourceFile::new(format!("m{i}.py"), "x = 1\n"))
        .collect();
    assert!(matches!(
        on_classifier_thread(files),
        Err(Error::TooManyFiles { .. })
    ));
}

#[test]
fn invalid_utf8_is_scanned() {
    let mut src = b"import torch\nname = '".to_vec();
    src.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    src.extend_from_slice(b"'\nmodel = torch.nn.Linear(2, 2).cuda()\n");
    let c = one(src).expect("classified");
    assert!(c.fallback);
    assert_eq!(c.mode, ExecutionMode::Gpu, "{}", c.rationale);
    assert!(c.rationale.contains("token-level scan"), "{}", c.rationale);
}

#[test]
fn binary_junk_and_empty_input() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let junk: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let c = one(junk).expect("classified");
    assert!(c.rationale.len() <= 400);
    for src in [
        "", "\n\n\n", "   ", "\u{feff}", "\0\0\0", "'''", "\\", ")))", "\t\tx",
    ] {
        let c = one(src).expect("classified");
        assert_eq!(c.mode, ExecutionMode::Cpu, "{src:?}: {}", c.rationale);
    }
}

/// A megabyte of code costs about sixteen times what 64 KiB of the same code costs: the
/// classifier is linear in its input, with no path that blows up on size. Judged by the ratio of
/// two timings in the same process (a machine under load slows both), not by a wall-clock
/// bound; the speed itself is a benchmark (docs/classifier.md).
#[test]
fn a_megabyte_of_code_costs_what_its_size_says() {
    let line = "result = compute(alpha, beta) + [i * 2 for i in range(10)]  # x.cuda()\n";
    let source = |bytes: usize| format!("import torch\n{}", line.repeat(bytes / line.len() - 1));
    let timed = |src: &str| {
        let started = Instant::now();
        let c = one(src).expect("classified");
        assert!(!c.fallback);
        started.elapsed()
    };
    let (small, large) = (source(64 << 10), source(1 << 20));
    // the least of three runs of the small one: the least disturbed
    let small_took = (0..3).map(|_| timed(&small)).min().unwrap_or_default();
    let large_took = timed(&large);
    // linear: 16x; a quadratic path would be 256x
    assert!(
        large_took < small_took * 64,
        "1 MiB took {large_took:?}, 64 KiB {small_took:?}: {:.0}x for 16x the code",
        large_took.as_secs_f64() / small_took.as_secs_f64().max(1e-9)
    );
}

#[test]
fn crlf_and_bom_sources_are_read_like_python_does() {
    let src = "\u{feff}import torch\r\nif torch.cuda.is_available():\r\n    m = torch.nn.Linear(2, 2).cuda()\r\n";
    let c = one(src).expect("classified");
    assert!(!c.fallback, "{}", c.rationale);
    assert_eq!(c.mode, ExecutionMode::CpuPreferred);
    let f = c
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::DeviceUse)
        .expect("device use");
    assert_eq!((f.line, f.guarded), (3, true));
}
