//! The element type the model's weights are loaded in, from the tokens of every file counted:
//! `torch_dtype=torch.float16`, `dtype=torch.bfloat16`, `torch_dtype="float16"`, `.half()`,
//! `.to(torch.float16)`, `.bfloat16()`, `load_in_8bit=True`, `load_in_4bit=True`
//! (`BitsAndBytesConfig` too), `torch.float32` / `.float()`. Comments are not tokens, so they
//! never count.
//!
//! When several are written, the narrowest counts: a model loaded in float16 whose inputs or
//! outputs are cast to float32 still holds float16 weights, and an 8-bit load is asked for on
//! purpose. Nothing found: float32, PyTorch's default, said so in the rationale.

use gaia_contract::gpu_memory::Dtype;

use super::lexer::{Kind, Token};

/// A dtype written in the code, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct DtypeHit {
    pub dtype: Dtype,
    pub file: String,
    pub line: u32,
    /// What was written, e.g. `torch.float16`, `.half()`, `load_in_8bit=True`.
    pub what: String,
}

fn torch_attr(name: &str) -> Option<Dtype> {
    match name {
        "float16" | "half" => Some(Dtype::F16),
        "bfloat16" => Some(Dtype::Bf16),
        "float32" | "float" => Some(Dtype::F32),
        _ => None,
    }
}

fn dtype_string(s: &str) -> Option<Dtype> {
    match s.trim().to_ascii_lowercase().as_str() {
        "float16" | "fp16" | "half" | "torch.float16" => Some(Dtype::F16),
        "bfloat16" | "bf16" | "torch.bfloat16" => Some(Dtype::Bf16),
        "float32" | "fp32" | "torch.float32" => Some(Dtype::F32),
        _ => None,
    }
}

/// Every dtype the tokens of one file write.
pub fn scan(file: &str, src: &str, tokens: &[Token]) -> Vec<DtypeHit> {
    let mut hits = Vec::new();
    let at = |i: usize| tokens.get(i);
    let name_at = |i: usize, n: &str| at(i).is_some_and(|t| t.is_name(src, n));
    let op_at = |i: usize, o: &str| at(i).is_some_and(|t| t.is_op(src, o));
    for (i, t) in tokens.iter().enumerate() {
        if t.kind != Kind::Name {
            continue;
        }
        let text = t.text(src);
        let found = match text {
            // torch.float16, torch.half, torch.bfloat16, torch.float32
            "torch" if op_at(i + 1, ".") => {
                at(i + 2).filter(|n| n.kind == Kind::Name).and_then(|n| {
                    torch_attr(n.text(src)).map(|d| (d, format!("torch.{}", n.text(src))))
                })
            }
            // model.half(), model.bfloat16(), model.float()
            "half" | "bfloat16" | "float"
                if i > 0 && op_at(i - 1, ".") && op_at(i + 1, "(") && op_at(i + 2, ")") =>
            {
                // `torch.float` is read above (its `torch` token); here only method calls.
                let after_torch = i >= 2 && name_at(i - 2, "torch");
                (!after_torch)
                    .then(|| torch_attr(text).map(|d| (d, format!(".{text}()"))))
                    .flatten()
            }
            "load_in_8bit" | "load_in_4bit" if op_at(i + 1, "=") && name_at(i + 2, "True") => {
                let d = if text == "load_in_8bit" {
                    Dtype::Int8
                } else {
                    Dtype::Int4
                };
                Some((d, format!("{text}=True")))
            }
            // torch_dtype="float16", dtype="bfloat16"
            "torch_dtype" | "dtype" if op_at(i + 1, "=") => at(i + 2)
                .and_then(|s| s.str_body(src))
                .and_then(|s| dtype_string(s).map(|d| (d, format!("{text}=\"{s}\"")))),
            _ => None,
        };
        if let Some((dtype, what)) = found {
            hits.push(DtypeHit {
                dtype,
                file: file.to_owned(),
                line: t.line,
                what,
            });
        }
    }
    hits
}

/// The narrowest of the dtypes found (the first written among equals).
pub fn narrowest(hits: impl IntoIterator<Item = DtypeHit>) -> Option<DtypeHit> {
    hits.into_iter()
        .fold(None, |best: Option<DtypeHit>, h| match best {
            Some(b) if b.dtype.bytes() <= h.dtype.bytes() => Some(b),
            _ => Some(h),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(src: &str) -> Option<(Dtype, String)> {
        let lexed = super::super::lexer::lex(src);
        narrowest(scan("func.py", src, &lexed.tokens)).map(|h| (h.dtype, h.what))
    }

    #[test]
    fn reads_the_ways_code_asks_for_a_dtype() {
        let cases: &[(&str, Dtype, &str)] = &[
            (
                "m = AutoModel.from_pretrained(n, torch_dtype=torch.float16)",
                Dtype::F16,
                "torch.float16",
            ),
            (
                "m = M.from_pretrained(n, torch_dtype=torch.bfloat16)",
                Dtype::Bf16,
                "torch.bfloat16",
            ),
            (
                "m = M.from_pretrained(n, torch_dtype=\"float16\")",
                Dtype::F16,
                "torch_dtype=\"float16\"",
            ),
            (
                "m = M.from_pretrained(n, dtype='bf16')",
                Dtype::Bf16,
                "dtype=\"bf16\"",
            ),
            ("model = resnet18().half().cuda()", Dtype::F16, ".half()"),
            ("model = model.to(torch.half)", Dtype::F16, "torch.half"),
            (
                "model = model.to('cuda', torch.float16)",
                Dtype::F16,
                "torch.float16",
            ),
            ("model = model.bfloat16()", Dtype::Bf16, ".bfloat16()"),
            (
                "m = M.from_pretrained(n, load_in_8bit=True)",
                Dtype::Int8,
                "load_in_8bit=True",
            ),
            (
                "q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)",
                Dtype::Int4,
                "load_in_4bit=True",
            ),
            ("x = x.to(torch.float32)", Dtype::F32, "torch.float32"),
            ("model = model.float()", Dtype::F32, ".float()"),
        ];
        for (src, dtype, what) in cases {
            assert_eq!(found(src), Some((*dtype, (*what).to_owned())), "{src}");
        }
    }

    #[test]
    fn the_narrowest_counts_and_comments_never() {
        let src =
            "m = M.from_pretrained(n, torch_dtype=torch.float16)\nout = m(x).to(torch.float32)\n";
        assert_eq!(found(src).map(|f| f.0), Some(Dtype::F16));
        assert_eq!(found("# torch_dtype=torch.float16\nm = M()\n"), None);
        assert_eq!(found("m = M.from_pretrained(n, load_in_8bit=False)"), None);
        assert_eq!(
            found("m = M.from_pretrained(n, torch_dtype=\"auto\")"),
            None
        );
        assert_eq!(found("y = np.float16(x)\nhalf = 2\n"), None);
    }
}
