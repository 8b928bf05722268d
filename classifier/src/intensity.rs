//! How heavy the tensor work is: tensor ops, tensor shapes, models and their sizes, training.

use ruff_python_ast::{self as ast, Expr};

use super::rules::{self, ModelSize, TransformerShape};
use super::source::{excerpt, shorten};
use super::values::Val;
use super::walk::{CallSite, Hit};
use gaia_contract::FindingKind;

/// Tensor constructors whose positional arguments (or first tuple argument) are the shape.
const TENSOR_CONSTRUCTORS: &[&str] = &[
    "torch.rand",
    "torch.randn",
    "torch.zeros",
    "torch.ones",
    "torch.empty",
    "torch.full",
    "tensorflow.zeros",
    "tensorflow.ones",
    "tensorflow.random.normal",
    "tensorflow.random.uniform",
    "jax.numpy.zeros",
    "jax.numpy.ones",
    "jax.numpy.empty",
];

/// Tensor compute calls.
const TENSOR_OPS: &[&str] = &[
    "torch.matmul",
    "torch.mm",
    "torch.bmm",
    "torch.einsum",
    "torch.tensordot",
    "torch.nn.functional.conv1d",
    "torch.nn.functional.conv2d",
    "torch.nn.functional.conv3d",
    "torch.nn.functional.scaled_dot_product_attention",
    "tensorflow.matmul",
    "tensorflow.linalg.matmul",
    "tensorflow.einsum",
    "tensorflow.nn.conv2d",
    "jax.numpy.matmul",
    "jax.numpy.dot",
    "jax.numpy.einsum",
];

/// Layer classes that are tensor compute (`torch.nn.Conv2d`, `keras.layers.Conv2D`, ...).
fn is_conv_layer(q: &str) -> bool {
    let last = q.rsplit('.').next().unwrap_or(q);
    (q.starts_with("torch.nn.")
        || q.starts_with("tensorflow.keras.layers.")
        || q.starts_with("keras.layers."))
        && (last.starts_with("Conv") || last.starts_with("MultiheadAttention"))
}

/// Classes whose `from_pretrained` loads no model weights.
fn is_not_a_model(class: &str) -> bool {
    [
        "Tokenizer",
        "Processor",
        "Config",
        "FeatureExtractor",
        "Scheduler",
        "TokenizerFast",
    ]
    .iter()
    .any(|s| class.contains(s))
}

fn arg_expr<'a>(site: &CallSite<'_, 'a>, pos: usize, kw: &[&str]) -> Option<&'a Expr> {
    let call = site.call;
    call.arguments.args.get(pos).or_else(|| {
        call.arguments
            .keywords
            .iter()
            .find(|k| k.arg.as_deref().is_some_and(|a| kw.contains(&a)))
            .map(|k| &k.value)
    })
}

fn str_arg(site: &CallSite<'_, '_>, pos: usize, kw: &[&str]) -> Option<Val> {
    let e = arg_expr(site, pos, kw)?;
    Some(named(site, e))
}

/// The model an argument names: its value when known; else, when the names and strings written
/// in the argument tell a size (`self.yolov8x_path`, `f"{root}/resnet50.pt"`,
/// `os.path.join(model_dir, "vit-large.onnx")`), that text; else unknown.
fn named(site: &CallSite<'_, '_>, e: &Expr) -> Val {
    match site.eval.eval(site.at, e) {
        Val::Str(s) if rules::model_size(&s).params.is_some() => Val::Str(s),
        v => {
            let text = excerpt(site.src, e);
            if rules::model_size(&text).params.is_some() {
                Val::Str(text)
            } else {
                v
            }
        }
    }
}

/// A size assumed from what the code says of a model it cannot name (its class or task).
fn assumed(what: String, why: &str, known: &rules::KnownModel) -> Hit {
    let size = ModelSize {
        params: Some(known.params_m * 1e6),
        gflops: known.gflops,
    };
    Hit::new(
        FindingKind::ModelLoad,
        format!("{what} (size unknown; {why}: assumed {})", size.describe()),
    )
    .heavy(size.is_heavy())
    .params(size.params)
}

fn model_hit(what: String, size: ModelSize, force_heavy: bool) -> Hit {
    let heavy = force_heavy || size.is_heavy();
    let desc = if force_heavy && size.params.is_none() {
        "diffusion pipeline".to_owned()
    } else {
        size.describe()
    };
    Hit::new(FindingKind::ModelLoad, format!("{what} ({desc})"))
        .heavy(heavy)
        .params(size.params)
}

/// A model referred to by name (a string value) through `call_text`.
fn named_model(call_text: &str, name: Option<Val>, force_heavy: bool) -> Hit {
    match name {
        Some(Val::Str(s)) => model_hit(shorten(&s), rules::model_size(&s), force_heavy),
        _ => model_hit(call_text.to_owned(), ModelSize::default(), force_heavy),
    }
}

fn config_size(class: &str, kwargs: &[(String, Val)]) -> ModelSize {
    let defaults = rules::CONFIG_DEFAULTS
        .iter()
        .find(|(c, _)| *c == class)
        .map(|(_, s)| *s);
    let get = |keys: &[&str]| -> Option<f64> {
        kwargs
            .iter()
            .rev()
            .find(|(k, _)| keys.contains(&k.as_str()))
            .and_then(|(_, v)| v.as_int())
            .map(|n| n as f64)
    };
    let hidden = get(rules::CONFIG_HIDDEN).or(defaults.map(|d| d.hidden));
    let layers = get(rules::CONFIG_LAYERS).or(defaults.map(|d| d.layers));
    let (Some(hidden), Some(layers)) = (hidden, layers) else {
        return ModelSize::default();
    };
    let heads = get(rules::CONFIG_HEADS)
        .or(defaults.map(|d| d.heads))
        .unwrap_or(1.0);
    let shape = TransformerShape {
        hidden,
        layers,
        intermediate: get(rules::CONFIG_INTERMEDIATE)
            .or(defaults.map(|d| d.intermediate))
            .unwrap_or(4.0 * hidden),
        vocab: get(rules::CONFIG_VOCAB)
            .or(defaults.map(|d| d.vocab))
            .unwrap_or(32000.0),
        heads,
        kv_heads: get(rules::CONFIG_KV_HEADS).unwrap_or(defaults.map_or(heads, |d| {
            if get(rules::CONFIG_HEADS).is_some() && d.kv_heads == d.heads {
                heads
            } else {
                d.kv_heads
            }
        })),
        gated: defaults.is_some_and(|d| d.gated),
        tied_embeddings: defaults.is_none_or(|d| d.tied_embeddings),
    };
    ModelSize {
        params: Some(shape.params()),
        gflops: None,
    }
}

/// A tensor shape: the positional arguments, or the first argument when it is a tuple/list.
fn shape_dims(site: &CallSite<'_, '_>, q: &str) -> Vec<Val> {
    let call = site.call;
    let args: &[Expr] = if q == "torch.full" {
        call.arguments.args.get(..1).unwrap_or(&[])
    } else {
        &call.arguments.args
    };
    let mut dims = Vec::new();
    for a in args {
        match site.eval.eval(site.at, a) {
            Val::Seq(items) => dims.extend(items),
            v => dims.push(v),
        }
    }
    if let Some(k) = call
        .arguments
        .keywords
        .iter()
        .find(|k| matches!(k.arg.as_deref(), Some("size" | "shape")))
    {
        match site.eval.eval(site.at, &k.value) {
            Val::Seq(items) => dims.extend(items),
            v => dims.push(v),
        }
    }
    dims
}

/// Intensity findings of one call.
pub fn check_call(site: &CallSite<'_, '_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let call = site.call;
    let text = || excerpt(site.src, call);
    let method = match call.func.as_ref() {
        Expr::Attribute(a) => Some(a.attr.as_str()),
        _ => None,
    };
    if let Some(q) = site.qual.as_deref() {
        let last = q.rsplit('.').next().unwrap_or(q);
        if TENSOR_CONSTRUCTORS.contains(&q) {
            let dims = shape_dims(site, q);
            let known: Option<u64> = dims.iter().try_fold(1u64, |acc, d| {
                let n = u64::try_from(d.as_int()?).ok()?;
                Some(acc.saturating_mul(n))
            });
            match known {
                Some(n) if n >= rules::LARGE_TENSOR_ELEMENTS => hits.push(
                    Hit::new(
                        FindingKind::LargeTensor,
                        format!("{} ({n} elements)", text()),
                    )
                    .heavy(true),
                ),
                Some(_) => {}
                None if !dims.is_empty() => {
                    hits.push(Hit::new(FindingKind::RuntimeSizedTensor, text()))
                }
                None => {}
            }
            return hits;
        }
        if TENSOR_OPS.contains(&q) {
            hits.push(Hit::new(FindingKind::TensorOp, q));
            return hits;
        }
        if is_conv_layer(q) {
            hits.push(Hit::new(FindingKind::TensorOp, format!("{q} layer")));
            return hits;
        }
        if q.starts_with("torchvision.models.")
            && last.starts_with(|c: char| c.is_ascii_lowercase())
            && !last.ends_with("weights")
        {
            hits.push(model_hit(q.to_owned(), rules::model_size(last), false));
            return hits;
        }
        if q.starts_with("tensorflow.keras.applications.") || q.starts_with("keras.applications.") {
            if last.starts_with(|c: char| c.is_ascii_uppercase()) {
                hits.push(model_hit(q.to_owned(), rules::model_size(last), false));
            }
            return hits;
        }
        if let Some((_, known)) = rules::HEAVY_WHATEVER_THE_FILE.iter().find(|(c, _)| *c == q) {
            let name = str_arg(site, 0, &["model"]);
            let hit = match name {
                Some(Val::Str(s)) if rules::model_size(&s).params.is_some() => {
                    model_hit(shorten(&s), rules::model_size(&s), false)
                }
                _ => assumed(text(), &format!("every {last} variant is heavy"), known),
            };
            hits.push(hit);
            return hits;
        }
        if rules::MODEL_FILE_LOADERS.contains(&q) {
            let name = str_arg(
                site,
                0,
                &["f", "path", "path_or_bytes", "filepath", "export_dir"],
            );
            hits.push(named_model(&text(), name, false));
            return hits;
        }
        match q {
            "timm.create_model"
            | "sentence_transformers.SentenceTransformer"
            | "sentence_transformers.CrossEncoder"
            | "faster_whisper.WhisperModel"
            | "open_clip.create_model_and_transforms" => {
                let name = str_arg(site, 0, &["model_name", "model_name_or_path", "model"]);
                hits.push(named_model(&text(), name, false));
                return hits;
            }
            "torch.hub.load" => {
                let name = str_arg(site, 1, &["model"]);
                hits.push(named_model(&text(), name, false));
                return hits;
            }
            "whisper.load_model" => {
                if let Some(Val::Str(s)) = str_arg(site, 0, &["name"]) {
                    let base = s.split(['.', '-']).next().unwrap_or(&s).to_owned();
                    let params = rules::WHISPER_SIZES
                        .iter()
                        .find(|(n, _)| *n == base)
                        .map(|(_, p)| p * 1e6);
                    let size = ModelSize {
                        params,
                        gflops: None,
                    };
                    hits.push(model_hit(format!("whisper {s}"), size, false));
                } else {
                    hits.push(named_model(&text(), None, false));
                }
                return hits;
            }
            "transformers.pipeline" => {
                let given = arg_expr(site, 1, &["model"]).is_some();
                let model = str_arg(site, 1, &["model"]);
                let task = match str_arg(site, 0, &["task"]) {
                    Some(Val::Str(task)) => Some(task),
                    _ => None,
                };
                let default = || {
                    let task = task.as_deref()?;
                    rules::PIPELINE_DEFAULTS
                        .iter()
                        .find(|(t, _)| task.starts_with(t))
                        .map(|(_, m)| Val::Str((*m).to_owned()))
                };
                let hit = match model {
                    Some(Val::Str(s)) if rules::model_size(&s).params.is_some() => {
                        named_model(&text(), Some(Val::Str(s)), false)
                    }
                    // `model=model_dir`: what the task says; else the task's default model.
                    _ if given => {
                        let by_task = task.as_deref().and_then(|task| {
                            rules::PIPELINE_TASK_SIZES
                                .iter()
                                .find(|(t, _)| task.starts_with(t))
                        });
                        match (by_task, default()) {
                            (Some((t, known)), _) => {
                                assumed(text(), &format!("the task is {t}"), known)
                            }
                            (None, Some(Val::Str(d))) => {
                                let size = rules::model_size(&d);
                                Hit::new(
                                    FindingKind::ModelLoad,
                                    format!(
                                        "{} (size unknown; like the task's default {d}: {})",
                                        text(),
                                        size.describe()
                                    ),
                                )
                                .heavy(size.is_heavy())
                            }
                            _ => named_model(&text(), None, false),
                        }
                    }
                    _ => named_model(&text(), default(), false),
                };
                hits.push(hit);
                return hits;
            }
            "transformers.Trainer"
            | "transformers.Seq2SeqTrainer"
            | "trl.SFTTrainer"
            | "pytorch_lightning.Trainer"
            | "lightning.Trainer"
            | "lightning.pytorch.Trainer" => {
                hits.push(Hit::new(FindingKind::Training, text()));
                return hits;
            }
            _ => {}
        }
        if q.starts_with("transformers.")
            && last.ends_with("Config")
            && !matches!(last, "AutoConfig" | "PretrainedConfig" | "GenerationConfig")
            && !last.contains("Quantization")
            && !rules::CUDA_QUANTIZATION_CONFIGS.contains(&last)
        {
            let kwargs = site.eval.kwargs(site.at, &call.arguments.keywords);
            let size = config_size(last, &kwargs);
            hits.push(model_hit(format!("{last}(...)"), size, false));
            return hits;
        }
        if q.starts_with("torch.optim.")
            && last.starts_with(|c: char| c.is_ascii_uppercase())
            && !q.contains("lr_scheduler")
        {
            hits.push(Hit::new(FindingKind::Training, format!("{q} optimizer")));
            return hits;
        }
    }
    match method {
        Some("from_pretrained") => {
            let class = match call.func.as_ref() {
                Expr::Attribute(a) => match a.value.as_ref() {
                    Expr::Name(n) => n.id.to_string(),
                    Expr::Attribute(b) => b.attr.to_string(),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            if !is_not_a_model(&class) {
                let name = str_arg(site, 0, &["pretrained_model_name_or_path"]);
                let heavy_class = rules::HEAVY_PIPELINE_CLASSES.contains(&class.as_str());
                let by_class = rules::MODEL_CLASS_SIZES
                    .iter()
                    .find(|(suffix, _)| class.ends_with(suffix));
                let named_size =
                    matches!(&name, Some(Val::Str(s)) if rules::model_size(s).params.is_some());
                let mut hit = match (&name, by_class) {
                    _ if named_size || heavy_class => named_model(&text(), name, heavy_class),
                    (_, None) => named_model(&text(), name, heavy_class),
                    (_, Some((suffix, known))) => {
                        assumed(text(), &format!("a *{suffix} model"), known)
                    }
                };
                hit.detail = format!("{class}.from_pretrained: {}", hit.detail);
                hits.push(hit);
            }
        }
        Some("backward") if site.framework => {
            hits.push(Hit::new(FindingKind::Training, text()));
        }
        Some("fit") if site.has_root(&["tensorflow", "keras", "tf_keras"]) => {
            hits.push(Hit::new(FindingKind::Training, text()));
        }
        Some("matmul" | "mm" | "bmm") if site.framework => {
            hits.push(Hit::new(FindingKind::TensorOp, text()));
        }
        _ => {}
    }
    hits
}

/// `a @ b` in a module that imports a tensor framework.
pub fn matmul_operator(src: &str, e: &ast::ExprBinOp) -> Hit {
    Hit::new(
        FindingKind::TensorOp,
        format!("{} (@ matmul)", excerpt(src, e)),
    )
}
