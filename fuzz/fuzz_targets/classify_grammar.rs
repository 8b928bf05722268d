//! The classifier on grammar-shaped Python: a structure-aware generator of modules that import
//! GPU-capable and CPU libraries, define (decorated, nested, async) functions and classes, check
//! for a GPU, place models and tensors on devices, build device strings with f-strings and
//! `.format`, use unicode identifiers, deep expressions and odd literals. Mostly valid Python, so
//! the parser and the analysis walk (not only the token-level scan) are what is fuzzed.
//!
//! Checks: no panic; the same input gives the same answer; the answer does not depend on which
//! file of a two-file function the code sits in when the entry imports the other.
#![no_main]

#[path = "classifier_thread.rs"]
mod classifier_thread;

use arbitrary::Arbitrary;
use gaia_classifier::{Classification, SourceFile};
use libfuzzer_sys::fuzz_target;

const MODULES: &[&str] = &[
    "torch",
    "cupy",
    "numpy",
    "pandas",
    "transformers",
    "tensorflow",
    "jax",
    "numba.cuda",
    "onnxruntime",
    "sklearn",
    "ultralytics",
    "vllm",
    "torchvision.models",
    "os",
    "subprocess",
];
const NAMES: &[&str] = &[
    "model",
    "x",
    "device",
    "dev",
    "gpu",
    "cuda",
    "ñame",
    "データ",
    "tensor",
    "pipe",
    "self",
    "torch",
    "cp",
    "np",
    "batch",
    "_",
    "use_gpu",
];
const STRINGS: &[&str] = &[
    "cuda",
    "cuda:0",
    "cpu",
    "auto",
    "/GPU:0",
    "gpt2-xl",
    "resnet50",
    "yolov8x.pt",
    "7b",
    "meta-llama/Llama-2-7b-hf",
    "CUDAExecutionProvider",
    "-hwaccel cuda",
    "",
    "\\n",
    "ü",
];

#[derive(Debug, Arbitrary)]
enum Expr {
    Name(u8),
    Str(u8),
    FStr(u8, Box<Expr>),
    Format(u8, Box<Expr>),
    Num(i64),
    Attr(Box<Expr>, u8),
    Call(Box<Expr>, Vec<Expr>, Vec<(u8, Expr)>),
    MatMul(Box<Expr>, Box<Expr>),
    BinOp(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Lambda(u8, Box<Expr>),
    IsAvailable,
    To(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Arbitrary)]
enum Stmt {
    Import(u8, Option<u8>),
    FromImport(u8, u8),
    TryImport(u8),
    Assign(u8, Expr),
    Expr(Expr),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    Def {
        name: u8,
        decorators: Vec<u8>,
        is_async: bool,
        body: Vec<Stmt>,
    },
    Class {
        name: u8,
        body: Vec<Stmt>,
    },
    Return(Expr),
    Raise,
    Assert(Expr),
    With(Expr, Vec<Stmt>),
    For(u8, Expr, Vec<Stmt>),
    Try(Vec<Stmt>, Vec<Stmt>),
}

#[derive(Debug, Arbitrary)]
struct Program {
    entry: Vec<Stmt>,
    helper: Vec<Stmt>,
}

fn pick(list: &'static [&'static str], i: u8) -> &'static str {
    list[usize::from(i) % list.len()]
}

fn expr(e: &Expr, depth: usize, out: &mut String) {
    if depth > 24 {
        out.push('0');
        return;
    }
    let d = depth + 1;
    match e {
        Expr::Name(i) => out.push_str(pick(NAMES, *i)),
        Expr::Str(i) => out.push_str(&format!("{:?}", pick(STRINGS, *i))),
        Expr::FStr(i, inner) => {
            out.push_str(&format!(
                "f\"{}:{{",
                pick(STRINGS, *i).replace(['"', '{', '}', '\\'], "")
            ));
            expr(inner, d, out);
            out.push_str("}\"");
        }
        Expr::Format(i, inner) => {
            out.push_str(&format!("'/{{}}:{}'.format(", i % 4));
            expr(inner, d, out);
            out.push(')');
        }
        Expr::Num(n) => out.push_str(&n.to_string()),
        Expr::Attr(v, i) => {
            expr(v, d, out);
            out.push('.');
            out.push_str(pick(NAMES, *i));
        }
        Expr::Call(f, args, kwargs) => {
            expr(f, d, out);
            out.push('(');
            for a in args.iter().take(4) {
                expr(a, d, out);
                out.push_str(", ");
            }
            for (k, v) in kwargs.iter().take(3) {
                out.push_str(
                    ["device", "device_map", "providers", "load_in_4bit", "model"]
                        [usize::from(*k) % 5],
                );
                out.push('=');
                expr(v, d, out);
                out.push_str(", ");
            }
            out.push(')');
        }
        Expr::MatMul(a, b) | Expr::BinOp(a, b) => {
            out.push('(');
            expr(a, d, out);
            out.push_str(if matches!(e, Expr::MatMul(..)) {
                " @ "
            } else {
                " + "
            });
            expr(b, d, out);
            out.push(')');
        }
        Expr::Cond(a, b, c) => {
            out.push('(');
            expr(a, d, out);
            out.push_str(" if ");
            expr(b, d, out);
            out.push_str(" else ");
            expr(c, d, out);
            out.push(')');
        }
        Expr::List(items) => {
            out.push('[');
            for i in items.iter().take(5) {
                expr(i, d, out);
                out.push_str(", ");
            }
            out.push(']');
        }
        Expr::Lambda(i, body) => {
            out.push_str(&format!("(lambda {}: ", pick(NAMES, *i)));
            expr(body, d, out);
            out.push(')');
        }
        Expr::IsAvailable => out.push_str("torch.cuda.is_available()"),
        Expr::To(v, dev) => {
            expr(v, d, out);
            out.push_str(".to(");
            expr(dev, d, out);
            out.push(')');
        }
    }
}

fn block(body: &[Stmt], indent: usize, depth: usize, out: &mut String) {
    if body.is_empty() || depth > 12 {
        out.push_str(&"    ".repeat(indent));
        out.push_str("pass\n");
        return;
    }
    for s in body.iter().take(12) {
        stmt(s, indent, depth + 1, out);
    }
}

fn stmt(s: &Stmt, indent: usize, depth: usize, out: &mut String) {
    let pad = "    ".repeat(indent);
    out.push_str(&pad);
    match s {
        Stmt::Import(m, alias) => {
            out.push_str("import ");
            out.push_str(pick(MODULES, *m));
            if let Some(a) = alias {
                out.push_str(" as ");
                out.push_str(pick(NAMES, *a));
            }
            out.push('\n');
        }
        Stmt::FromImport(m, n) => {
            out.push_str(&format!(
                "from {} import {}\n",
                pick(MODULES, *m),
                pick(NAMES, *n)
            ));
        }
        Stmt::TryImport(m) => {
            out.push_str(&format!(
                "try:\n{pad}    import {}\n{pad}except ImportError:\n{pad}    pass\n",
                pick(MODULES, *m)
            ));
        }
        Stmt::Assign(n, e) => {
            out.push_str(pick(NAMES, *n));
            out.push_str(" = ");
            expr(e, 0, out);
            out.push('\n');
        }
        Stmt::Expr(e) => {
            expr(e, 0, out);
            out.push('\n');
        }
        Stmt::If(c, then, other) => {
            out.push_str("if ");
            expr(c, 0, out);
            out.push_str(":\n");
            block(then, indent + 1, depth, out);
            if !other.is_empty() {
                out.push_str(&pad);
                out.push_str("else:\n");
                block(other, indent + 1, depth, out);
            }
        }
        Stmt::Def {
            name,
            decorators,
            is_async,
            body,
        } => {
            for d in decorators.iter().take(3) {
                out.push_str(&format!("@{}\n{pad}", pick(NAMES, *d)));
            }
            if *is_async {
                out.push_str("async ");
            }
            out.push_str(&format!("def {}(x, device=None):\n", pick(NAMES, *name)));
            block(body, indent + 1, depth, out);
        }
        Stmt::Class { name, body } => {
            out.push_str(&format!("class {}:\n", pick(NAMES, *name)));
            block(body, indent + 1, depth, out);
        }
        Stmt::Return(e) => {
            out.push_str("return ");
            expr(e, 0, out);
            out.push('\n');
        }
        Stmt::Raise => out.push_str("raise RuntimeError('no GPU')\n"),
        Stmt::Assert(e) => {
            out.push_str("assert ");
            expr(e, 0, out);
            out.push('\n');
        }
        Stmt::With(e, body) => {
            out.push_str("with ");
            expr(e, 0, out);
            out.push_str(":\n");
            block(body, indent + 1, depth, out);
        }
        Stmt::For(n, e, body) => {
            out.push_str(&format!("for {} in ", pick(NAMES, *n)));
            expr(e, 0, out);
            out.push_str(":\n");
            block(body, indent + 1, depth, out);
        }
        Stmt::Try(body, handler) => {
            out.push_str("try:\n");
            block(body, indent + 1, depth, out);
            out.push_str(&pad);
            out.push_str("except Exception:\n");
            block(handler, indent + 1, depth, out);
        }
    }
}

fn render(body: &[Stmt]) -> String {
    let mut out = String::new();
    for s in body.iter().take(40) {
        stmt(s, 0, 0, &mut out);
    }
    out
}

fn run(files: Vec<SourceFile>) -> Option<Classification> {
    classifier_thread::run(files).ok()
}

fuzz_target!(|p: Program| {
    let entry = render(&p.entry);
    let helper = render(&p.helper);
    let one = vec![SourceFile::new("func.py", entry.as_bytes())];
    let first = run(one.clone());
    assert_eq!(first, run(one), "the same source, another answer");
    // A two-file function: the entry imports its helper module.
    let two = vec![
        SourceFile::new(
            "func.py",
            format!("from helper import *\n{entry}").into_bytes(),
        ),
        SourceFile::new("helper.py", helper.into_bytes()),
    ];
    let _ = run(two);
});
