//! The classification rules, in one place: which imports count, which calls are GPU use, the
//! model-size table and thresholds, and how findings combine into a mode.
//!
//! How findings become a mode ([`decide`]), first match wins:
//!
//! 1. `gpu`: any GPU use without a CPU path: an unguarded `device_use`, `cuda_call` or
//!    `gpu_library`, or a `gpu_required`.
//! 2. `gpu_preferred`: something GPU-capable (a framework import, guarded GPU use) and heavy work:
//!    a `model_load` over [`LARGE_MODEL_PARAMS`] parameters (or a heavy vision net, over
//!    [`HEAVY_VISION_GFLOPS`], or a diffusion pipeline), `training`, or a `large_tensor` (a
//!    constant shape over [`LARGE_TENSOR_ELEMENTS`]).
//! 3. `cpu_preferred`: something GPU-capable, light or unknown intensity (shapes from requests, a
//!    small model, device-agnostic code).
//! 4. `cpu`: nothing that can use a GPU (pure Python, I/O, numpy/pandas/scikit-learn).

use gaia_contract::{verdict, ExecutionMode, Finding, FindingKind};

// ---------------------------------------------------------------------------------------------
// Thresholds
// ---------------------------------------------------------------------------------------------

/// A model with at least this many parameters is large-model inference: `gpu_preferred`.
/// (TinyLlama-1.1B is over it; BERT-large, GPT-2 large, Whisper medium are under it.)
pub const LARGE_MODEL_PARAMS: f64 = 1.0e9;

/// A vision model with at least this many GFLOPs per image is a big net: `gpu_preferred`.
/// (ResNet-50 at 4.1 is over it; ResNet-18 at 1.8 and ResNet-34 at 3.6 are under it.)
pub const HEAVY_VISION_GFLOPS: f64 = 4.0;

/// A tensor with a constant shape of at least this many elements (4096 x 4096) is heavy.
pub const LARGE_TENSOR_ELEMENTS: u64 = 1 << 24;

// ---------------------------------------------------------------------------------------------
// Which imports count
// ---------------------------------------------------------------------------------------------

/// Frameworks that can use a GPU and fall back to the CPU (top-level module names).
pub const GPU_CAPABLE_FRAMEWORKS: &[&str] = &[
    "torch",
    "torchvision",
    "torchaudio",
    "torchtext",
    "tensorflow",
    "keras",
    "tf_keras",
    "jax",
    "jaxlib",
    "flax",
    "transformers",
    "diffusers",
    "accelerate",
    "sentence_transformers",
    "timm",
    "ultralytics",
    "whisper",
    "faster_whisper",
    "onnxruntime",
    "mxnet",
    "paddle",
    "xgboost",
    "lightgbm",
    "catboost",
    "open_clip",
    "clip",
    "lightning",
    "pytorch_lightning",
    "optimum",
    "peft",
    "bitsandbytes",
    "deepspeed",
    "llama_cpp",
    "ctransformers",
    "torch_geometric",
    "dgl",
    "detectron2",
    "mmdet",
    "easyocr",
    "stable_baselines3",
    "spacy",
];

/// Libraries (or submodules) that only run on an NVIDIA GPU (dotted prefixes).
pub const GPU_ONLY_LIBRARIES: &[&str] = &[
    "cupy",
    "cupyx",
    "pycuda",
    "numba.cuda",
    "cudf",
    "cuml",
    "cugraph",
    "cuspatial",
    "cusignal",
    "cucim",
    "tensorrt",
    "torch_tensorrt",
    "vllm",
    "triton",
    "flash_attn",
    "xformers",
    "nvidia.dali",
    "auto_gptq",
    "exllamav2",
    "cuda",
];

/// CPU-only numeric and data libraries (reported, so a `cpu` rationale can name them).
pub const CPU_LIBRARIES: &[&str] = &[
    "numpy",
    "pandas",
    "scipy",
    "sklearn",
    "polars",
    "pyarrow",
    "statsmodels",
    "numba",
    "numexpr",
    "dask",
    "PIL",
    "cv2",
    "skimage",
    "networkx",
    "sympy",
];

/// Is `module` (dotted) or one of its parents in `table`? Returns the table entry.
pub fn lookup(table: &'static [&'static str], module: &str) -> Option<&'static str> {
    table.iter().copied().find(|entry| {
        module == *entry
            || (module.starts_with(entry) && module.as_bytes().get(entry.len()) == Some(&b'.'))
    })
}

// ---------------------------------------------------------------------------------------------
// Which calls are GPU use
// ---------------------------------------------------------------------------------------------

/// `torch.cuda.*` (and similar) functions that are safe without a GPU: availability checks and
/// lazy seeding. Every other `torch.cuda.*` call is a `cuda_call`.
pub const SAFE_CUDA_FUNCTIONS: &[&str] = &[
    "is_available",
    "device_count",
    "is_initialized",
    "manual_seed",
    "manual_seed_all",
    "seed",
    "seed_all",
    "is_bf16_supported",
];

/// Functions (last component, called on a framework module) that check for a GPU.
pub const AVAILABILITY_CHECKS: &[&str] = &[
    "is_available",
    "device_count",
    "is_gpu_available",
    "is_built_with_cuda",
    "list_physical_devices",
    "list_logical_devices",
    "getDeviceCount",
    "get_device_count",
    "default_backend",
    "get_available_providers",
];

/// Names a condition can test to switch between GPU and CPU: a condition mentioning a name that
/// contains one of these (case-insensitive) is a device guard (`if use_gpu:`, `if args.cuda:`,
/// `if device.type == "cuda":`).
pub const GUARD_NAME_PARTS: &[&str] = &["cuda", "gpu", "device", "accelerat"];

/// What a device string means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceString {
    /// A GPU: `cuda`, `cuda:1`, `gpu`, `/GPU:0`, `/device:GPU:0`.
    Gpu,
    /// `auto`, `balanced`, `sequential`: a GPU when there is one (`device_map=`).
    Auto,
    /// `cpu`, `/CPU:0`, `mps`, `meta`, ...
    Other,
}

pub fn device_string(s: &str) -> DeviceString {
    let t = s.trim().trim_start_matches('/').to_ascii_lowercase();
    let t = t.strip_prefix("device:").unwrap_or(&t);
    let head = t.split(':').next().unwrap_or("");
    match head {
        "cuda" | "gpu" => DeviceString::Gpu,
        "auto" | "balanced" | "balanced_low_0" | "sequential" => DeviceString::Auto,
        _ => DeviceString::Other,
    }
}

/// onnxruntime execution providers that run on a GPU (`providers=[...]`, `set_providers`).
pub const GPU_EXECUTION_PROVIDERS: &[&str] = &[
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
];

/// The onnxruntime provider that is the CPU path when it follows a GPU provider.
pub const CPU_EXECUTION_PROVIDER: &str = "CPUExecutionProvider";

/// Quantization configs that only load on CUDA (bitsandbytes, GPTQ/AWQ kernels): building one is
/// no model load, but passing it makes the load need a GPU.
pub const CUDA_QUANTIZATION_CONFIGS: &[&str] = &["BitsAndBytesConfig", "GPTQConfig", "AwqConfig"];

/// Keywords of a model load that turn on bitsandbytes quantization (needs CUDA).
pub const CUDA_QUANTIZATION_KEYWORDS: &[&str] = &["load_in_4bit", "load_in_8bit"];

/// Frameworks that put a model on the GPU by themselves when there is one (no `.to(...)`
/// needed): TensorFlow/Keras/JAX place ops, ultralytics, sentence-transformers, whisper,
/// faster-whisper, easyocr and detectron2 pick `cuda` when it is available.
pub const SELF_PLACING_FRAMEWORKS: &[&str] = &[
    "tensorflow",
    "keras",
    "tf_keras",
    "jax",
    "flax",
    "ultralytics",
    "sentence_transformers",
    "whisper",
    "faster_whisper",
    "easyocr",
    "detectron2",
];

/// Calls that show the function runs a model it loaded (inference): methods (`model.generate`,
/// `.eval()`, `.predict`, ...) and context managers (`torch.no_grad()`). A heavy model that is
/// run but never placed on a GPU runs on the CPU ([`decide`]); a load alone says nothing of where
/// the model runs.
pub const RUNS_MODEL_METHODS: &[&str] = &[
    "generate",
    "eval",
    "forward",
    "predict",
    "transcribe",
    "encode",
    "infer",
    "detect",
];
pub const RUNS_MODEL_CALLS: &[&str] = &[
    "torch.no_grad",
    "torch.inference_mode",
    "torch.autocast",
    "torch.amp.autocast",
];

/// Calls that start a process: their first argument (a command string or an argument list) is
/// read for GPU command-line forms ([`gpu_command`]).
pub const PROCESS_CALLS: &[&str] = &[
    "subprocess.run",
    "subprocess.Popen",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "os.system",
    "os.popen",
    "os.execvp",
    "os.execv",
    "os.spawnvp",
    "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell",
    "sh.ffmpeg",
];

/// Words of a command line that need an NVIDIA GPU: ffmpeg's NVENC/NVDEC codecs and CUDA
/// filters, and the common CLI switches (`--cuda`, `--gpu`, `--gpus`).
pub const GPU_COMMAND_WORDS: &[&str] = &[
    "h264_nvenc",
    "hevc_nvenc",
    "av1_nvenc",
    "nvenc",
    "h264_cuvid",
    "hevc_cuvid",
    "scale_cuda",
    "scale_npp",
    "hwupload_cuda",
    "--cuda",
    "--gpu",
    "--gpus",
    "--use-gpu",
    "--use_gpu",
];

/// Options whose next word is a device: a GPU device there (`-hwaccel cuda`, `--device cuda`,
/// `--device=cuda:0`) needs a GPU.
pub const DEVICE_OPTIONS: &[&str] = &[
    "-hwaccel",
    "-hwaccel_device",
    "-init_hw_device",
    "--device",
    "-device",
    "--devices",
];

/// How a command line uses a GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuCommand {
    /// It runs on a GPU (NVENC, `-hwaccel cuda`, `--device cuda`, ...).
    Uses,
    /// It asks whether there is one (`nvidia-smi`).
    Checks,
}

/// Reads a command (its words, as far as known) for the GPU forms above; returns how it uses a
/// GPU and the word that tells.
pub fn gpu_command(words: &[String]) -> Option<(GpuCommand, String)> {
    let mut check = None;
    for (i, w) in words.iter().enumerate() {
        let lower = w.to_ascii_lowercase();
        let (opt, inline) = match lower.split_once('=') {
            Some((o, v)) => (o.to_owned(), Some(v.to_owned())),
            None => (lower.clone(), None),
        };
        if GPU_COMMAND_WORDS.contains(&opt.as_str()) {
            return Some((GpuCommand::Uses, w.clone()));
        }
        if DEVICE_OPTIONS.contains(&opt.as_str()) {
            let value = inline.or_else(|| words.get(i + 1).map(|v| v.to_ascii_lowercase()));
            if let Some(v) = value {
                let v = v.split_once('=').map_or(v.as_str(), |(_, d)| d).to_owned();
                if matches!(device_string(&v), DeviceString::Gpu) || v.starts_with("nvdec") {
                    return Some((GpuCommand::Uses, format!("{w} {v}")));
                }
            }
        }
        let base = lower.rsplit('/').next().unwrap_or(&lower);
        if base == "nvidia-smi" && check.is_none() {
            check = Some((GpuCommand::Checks, "nvidia-smi".to_owned()));
        }
    }
    check
}

// ---------------------------------------------------------------------------------------------
// Model sizes
// ---------------------------------------------------------------------------------------------

/// A known model family: a name fragment (lower case, without `-`, `_`, `.`, `/`), its
/// parameters (millions), and for vision models its GFLOPs per image.
pub struct KnownModel {
    pub fragment: &'static str,
    pub params_m: f64,
    pub gflops: Option<f64>,
}

const fn m(fragment: &'static str, params_m: f64, gflops: Option<f64>) -> KnownModel {
    KnownModel {
        fragment,
        params_m,
        gflops,
    }
}

/// The model-size table. Matched on the normalised name (lower case, without `-_./ `); the
/// longest matching fragment wins. Names that carry their size ("1.1B", "7b", "350m") need no
/// entry: [`params_from_name`] reads it.
pub const KNOWN_MODELS: &[KnownModel] = &[
    // torchvision / timm classification nets (params M, GFLOPs at 224x224)
    m("resnet18", 11.7, Some(1.8)),
    m("resnet34", 21.8, Some(3.7)),
    m("resnet50", 25.6, Some(4.1)),
    m("resnet101", 44.5, Some(7.8)),
    m("resnet152", 60.2, Some(11.5)),
    m("wideresnet50", 68.9, Some(11.4)),
    m("wideresnet101", 126.9, Some(22.8)),
    m("resnext50", 25.0, Some(4.3)),
    m("resnext101", 88.8, Some(16.4)),
    m("mobilenet", 3.5, Some(0.3)),
    m("squeezenet", 1.2, Some(0.35)),
    m("shufflenet", 2.3, Some(0.15)),
    m("mnasnet", 4.4, Some(0.33)),
    m("efficientnetb0", 5.3, Some(0.39)),
    m("efficientnetb1", 7.8, Some(0.69)),
    m("efficientnetb2", 9.1, Some(1.1)),
    m("efficientnetb3", 12.2, Some(1.8)),
    m("efficientnetb4", 19.3, Some(4.4)),
    m("efficientnetb5", 30.4, Some(10.3)),
    m("efficientnetb6", 43.0, Some(19.1)),
    m("efficientnetb7", 66.3, Some(37.8)),
    m("efficientnetv2", 21.5, Some(8.4)),
    m("alexnet", 61.1, Some(0.7)),
    m("vgg", 138.0, Some(15.5)),
    m("densenet121", 8.0, Some(2.9)),
    m("densenet169", 14.1, Some(3.4)),
    m("densenet161", 28.7, Some(7.7)),
    m("densenet201", 20.0, Some(4.3)),
    m("googlenet", 6.6, Some(1.5)),
    m("inceptionv3", 27.2, Some(5.7)),
    m("convnext", 28.6, Some(4.5)),
    m("regnet", 6.4, Some(0.8)),
    m("vitb16", 86.6, Some(17.6)),
    m("vitb32", 88.2, Some(4.4)),
    m("vitbasepatch16", 86.6, Some(17.6)),
    m("vitbasepatch32", 88.2, Some(4.4)),
    m("vitl", 304.3, Some(61.6)),
    m("vitlarge", 304.3, Some(61.6)),
    m("vith", 632.0, Some(167.3)),
    m("vithuge", 632.0, Some(167.3)),
    m("vitsmall", 22.1, Some(4.6)),
    m("vittiny", 5.7, Some(1.3)),
    m("deittiny", 5.7, Some(1.3)),
    m("deitsmall", 22.1, Some(4.6)),
    m("deitbase", 86.6, Some(17.6)),
    m("swin", 28.3, Some(4.5)),
    m("maxvit", 30.9, Some(5.6)),
    m("clipvitbasepatch32", 151.0, Some(4.4)),
    m("clipvitbasepatch16", 150.0, Some(17.6)),
    m("clipvitlarge", 428.0, Some(81.0)),
    // detection / segmentation
    m("fasterrcnn", 41.8, Some(134.0)),
    m("maskrcnn", 44.4, Some(134.0)),
    m("keypointrcnn", 59.1, Some(137.0)),
    m("retinanet", 34.0, Some(152.0)),
    m("fcos", 32.3, Some(128.0)),
    m("ssdlite", 3.4, Some(0.58)),
    m("ssd300", 35.6, Some(34.9)),
    m("deeplabv3", 42.0, Some(178.7)),
    m("fcnresnet", 35.3, Some(152.7)),
    m("lraspp", 3.2, Some(2.1)),
    m("detrresnet50", 41.3, Some(86.0)),
    m("yolov5n", 1.9, Some(4.5)),
    m("yolov5s", 7.2, Some(16.5)),
    m("yolov8n", 3.2, Some(8.7)),
    m("yolov8s", 11.2, Some(28.6)),
    m("yolov8m", 25.9, Some(78.9)),
    m("yolov8l", 43.7, Some(165.2)),
    m("yolov8x", 68.2, Some(257.8)),
    m("yolo11n", 2.6, Some(6.5)),
    m("yolo11s", 9.4, Some(21.5)),
    m("yolo11x", 56.9, Some(194.9)),
    // text encoders and small generators
    m("distilbert", 66.0, None),
    m("bertbase", 110.0, None),
    m("bertlarge", 340.0, None),
    m("robertabase", 125.0, None),
    m("robertalarge", 355.0, None),
    m("debertav3base", 184.0, None),
    m("minilm", 22.7, None),
    m("mpnetbase", 110.0, None),
    m("e5small", 33.0, None),
    m("e5base", 110.0, None),
    m("e5large", 335.0, None),
    m("bgesmall", 33.0, None),
    m("bgebase", 110.0, None),
    m("bgelarge", 335.0, None),
    m("distilgpt2", 82.0, None),
    m("gpt2", 124.0, None),
    m("gpt2medium", 355.0, None),
    m("gpt2large", 774.0, None),
    m("gpt2xl", 1558.0, None),
    m("t5small", 60.0, None),
    m("t5base", 220.0, None),
    m("t5large", 770.0, None),
    m("flant5xl", 2850.0, None),
    m("flant5xxl", 11300.0, None),
    m("bartbase", 140.0, None),
    m("bartlarge", 406.0, None),
    m("distilbart", 306.0, None),
    m("wav2vec2base", 95.0, None),
    m("wav2vec2large", 317.0, None),
    m("whispertiny", 39.0, None),
    m("whisperbase", 74.0, None),
    m("whispersmall", 244.0, None),
    m("whispermedium", 769.0, None),
    m("whisperlarge", 1550.0, None),
    m("whisperturbo", 809.0, None),
    m("phi2", 2700.0, None),
    m("phi15", 1300.0, None),
    m("phi3mini", 3800.0, None),
    m("tinyllama", 1100.0, None),
    // generative families that are large whatever the variant
    m("stablediffusion", 1070.0, None),
    m("sdxl", 3500.0, None),
    m("sdturbo", 1070.0, None),
    m("flux", 12000.0, None),
    m("kandinsky", 3300.0, None),
    m("llama", 7000.0, None),
    m("mistral", 7200.0, None),
    m("mixtral", 46700.0, None),
    m("falcon", 7000.0, None),
];

/// Whisper's `load_model(name)` sizes (names without the "whisper" prefix).
pub const WHISPER_SIZES: &[(&str, f64)] = &[
    ("tiny", 39.0),
    ("base", 74.0),
    ("small", 244.0),
    ("medium", 769.0),
    ("large", 1550.0),
    ("turbo", 809.0),
];

/// transformers `pipeline(task)` default models, for pipelines built without `model=`.
pub const PIPELINE_DEFAULTS: &[(&str, &str)] = &[
    ("text-generation", "gpt2"),
    ("text2text-generation", "t5-base"),
    ("summarization", "distilbart-cnn-12-6"),
    ("translation", "t5-base"),
    (
        "sentiment-analysis",
        "distilbert-base-uncased-finetuned-sst-2-english",
    ),
    (
        "text-classification",
        "distilbert-base-uncased-finetuned-sst-2-english",
    ),
    ("fill-mask", "distilroberta-base"),
    (
        "question-answering",
        "distilbert-base-cased-distilled-squad",
    ),
    ("ner", "dbmdz/bert-large-cased-finetuned-conll03-english"),
    (
        "token-classification",
        "dbmdz/bert-large-cased-finetuned-conll03-english",
    ),
    ("feature-extraction", "distilbert-base-cased"),
    ("zero-shot-classification", "facebook/bart-large-mnli"),
    ("image-classification", "google/vit-base-patch16-224"),
    ("object-detection", "facebook/detr-resnet-50"),
    (
        "automatic-speech-recognition",
        "facebook/wav2vec2-base-960h",
    ),
];

/// Pipeline classes that are heavy whatever the checkpoint (diffusion runs a large UNet or
/// transformer many times per request).
pub const HEAVY_PIPELINE_CLASSES: &[&str] = &[
    "StableDiffusionPipeline",
    "StableDiffusionXLPipeline",
    "StableDiffusionImg2ImgPipeline",
    "StableDiffusionInpaintPipeline",
    "DiffusionPipeline",
    "AutoPipelineForText2Image",
    "AutoPipelineForImage2Image",
    "FluxPipeline",
    "StableVideoDiffusionPipeline",
];

/// Loaders whose model is heavy whatever the file (every YOLOv8/YOLO11 variant is over
/// [`HEAVY_VISION_GFLOPS`]): used when the name or path tells no size.
pub const HEAVY_WHATEVER_THE_FILE: &[(&str, KnownModel)] = &[
    ("ultralytics.YOLO", m("yolo", 3.2, Some(8.7))),
    ("ultralytics.RTDETR", m("rtdetr", 32.0, Some(103.0))),
];

/// transformers `pipeline(task, model=<a path or a variable>)`: what the task says about a model
/// the classifier cannot name. Generative, text-to-image and dense vision tasks are heavy (an
/// LLM, a diffusion model, ViT/DETR-size nets); the encoder tasks are light. Tasks not listed
/// fall back to their default model ([`PIPELINE_DEFAULTS`]).
pub const PIPELINE_TASK_SIZES: &[(&str, KnownModel)] = &[
    ("text-generation", m("llm", 1100.0, None)),
    ("conversational", m("llm", 1100.0, None)),
    ("image-text-to-text", m("vlm", 2000.0, None)),
    ("visual-question-answering", m("vlm", 2000.0, None)),
    ("image-to-text", m("vlm", 1000.0, None)),
    ("text-to-image", m("diffusion", 1070.0, None)),
    ("text-to-audio", m("tts", 1000.0, None)),
    ("text-to-speech", m("tts", 1000.0, None)),
    ("image-segmentation", m("segmenter", 40.0, Some(100.0))),
    ("mask-generation", m("sam", 600.0, Some(500.0))),
    ("depth-estimation", m("dpt", 340.0, Some(100.0))),
];

/// `X.from_pretrained(<a path or a variable>)`: what the class says of a model the classifier
/// cannot name (class-name suffix). A causal LM served as a function is an LLM (≥ 1B); a
/// vision-to-text model is a VLM. Other classes (sequence classification, seq2seq, ...) stay
/// "size unknown".
pub const MODEL_CLASS_SIZES: &[(&str, KnownModel)] = &[
    ("ForCausalLM", m("llm", 1100.0, None)),
    ("ForVision2Seq", m("vlm", 2000.0, None)),
    ("ForImageTextToText", m("vlm", 2000.0, None)),
];

/// Calls that load a model from a file or directory (the first argument is the path). The size
/// is read from the path or the names in the argument where they tell, else "size unknown".
pub const MODEL_FILE_LOADERS: &[&str] = &[
    "torch.load",
    "torch.jit.load",
    "torch.export.load",
    "onnxruntime.InferenceSession",
    "tensorflow.saved_model.load",
    "tensorflow.keras.models.load_model",
    "keras.models.load_model",
    "keras.saving.load_model",
    "tf_keras.models.load_model",
    "tensorflow.compat.v1.saved_model.load",
];

/// What is known about a model's size.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ModelSize {
    pub params: Option<f64>,
    pub gflops: Option<f64>,
}

impl ModelSize {
    pub fn is_heavy(&self) -> bool {
        self.params.is_some_and(|p| p >= LARGE_MODEL_PARAMS)
            || self.gflops.is_some_and(|g| g >= HEAVY_VISION_GFLOPS)
    }

    /// "~1.1B parameters", "~11.7M parameters, 1.8 GFLOPs", or "size unknown".
    pub fn describe(&self) -> String {
        let params = self.params.map(|p| {
            if p >= 1e9 {
                format!("~{:.1}B parameters", p / 1e9)
            } else {
                format!("~{:.1}M parameters", p / 1e6)
            }
        });
        match (params, self.gflops) {
            (Some(p), Some(g)) => format!("{p}, {g} GFLOPs"),
            (Some(p), None) => p,
            (None, Some(g)) => format!("{g} GFLOPs"),
            (None, None) => "size unknown".to_owned(),
        }
    }
}

/// Reads a size written in a model name: "TinyLlama-1.1B-Chat" (1.1e9), "Llama-2-7b-hf",
/// "bloom-560m", "Mixtral-8x7B" (56e9).
pub fn params_from_name(name: &str) -> Option<f64> {
    let lower = name.to_ascii_lowercase();
    let mut best: Option<f64> = None;
    for part in lower.split(['-', '_', '/', ' ', ':']) {
        let (scale, num) = if let Some(n) = part.strip_suffix('b') {
            (1e9, n)
        } else if let Some(n) = part.strip_suffix('m') {
            (1e6, n)
        } else {
            continue;
        };
        let (experts, num) = match num.split_once('x') {
            Some((e, n)) => (e.parse::<f64>().ok(), n),
            None => (Some(1.0), num),
        };
        let (Some(experts), Ok(value)) = (experts, num.parse::<f64>()) else {
            continue;
        };
        if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let p = experts * value * scale;
        best = Some(best.map_or(p, |b: f64| b.max(p)));
    }
    best
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | '/' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The longest [`KNOWN_MODELS`] fragment in a normalised name (the last such entry on a tie).
fn known_model(norm: &str) -> Option<&'static KnownModel> {
    static FRAGMENTS: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>> =
        std::sync::OnceLock::new();
    let Some(automaton) = FRAGMENTS.get_or_init(|| {
        // A DFA: the names are short, so the per-search setup matters more than memory.
        aho_corasick::AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(KNOWN_MODELS.iter().map(|k| k.fragment))
            .ok()
    }) else {
        // Building the automaton of a fixed table cannot fail; if it ever did, search plainly.
        return KNOWN_MODELS
            .iter()
            .filter(|k| norm.contains(k.fragment))
            .max_by_key(|k| k.fragment.len());
    };
    automaton
        .find_overlapping_iter(norm)
        .map(|m| m.pattern().as_usize())
        .filter_map(|i| Some((KNOWN_MODELS.get(i)?, i)))
        .max_by_key(|(k, i)| (k.fragment.len(), *i))
        .map(|(k, _)| k)
}

/// Size of a model named `name`: from the name itself, else from [`KNOWN_MODELS`].
pub fn model_size(name: &str) -> ModelSize {
    let norm = normalise(name);
    let known = known_model(&norm);
    let from_name = params_from_name(name);
    ModelSize {
        params: from_name.or(known.map(|k| k.params_m * 1e6)),
        gflops: known.and_then(|k| k.gflops),
    }
}

/// Does a string look like a model name with a size the classifier can tell? (Used to decide
/// whether a file without GPU-related identifiers still needs parsing.)
pub fn names_a_model(s: &str) -> bool {
    s.len() <= 200 && (params_from_name(s).is_some() || model_size(s).params.is_some())
}

/// Parameters of a transformer built from a config: `layers * (attention + mlp) + embeddings`,
/// attention `2h^2 + 2h*(h*kv/heads)`, a gated MLP `3*h*i` (Llama family) or `2*h*i`.
#[derive(Clone, Copy, Debug)]
pub struct TransformerShape {
    pub hidden: f64,
    pub layers: f64,
    pub intermediate: f64,
    pub vocab: f64,
    pub heads: f64,
    pub kv_heads: f64,
    pub gated: bool,
    pub tied_embeddings: bool,
}

impl TransformerShape {
    pub fn params(&self) -> f64 {
        let h = self.hidden;
        let kv_ratio = if self.heads > 0.0 {
            self.kv_heads / self.heads
        } else {
            1.0
        };
        let attention = 2.0 * h * h + 2.0 * h * h * kv_ratio;
        let mlp = if self.gated { 3.0 } else { 2.0 } * h * self.intermediate;
        let embeddings = self.vocab * h * if self.tied_embeddings { 1.0 } else { 2.0 };
        self.layers * (attention + mlp) + embeddings
    }
}

/// Defaults of well-known transformers config classes: (class, hidden, layers, intermediate,
/// vocab, heads, kv_heads, gated, tied).
pub const CONFIG_DEFAULTS: &[(&str, TransformerShape)] = &[
    (
        "LlamaConfig",
        shape(4096.0, 32.0, 11008.0, 32000.0, 32.0, 32.0, true, false),
    ),
    (
        "MistralConfig",
        shape(4096.0, 32.0, 14336.0, 32000.0, 32.0, 8.0, true, false),
    ),
    (
        "Qwen2Config",
        shape(4096.0, 32.0, 22016.0, 151936.0, 32.0, 32.0, true, false),
    ),
    (
        "GemmaConfig",
        shape(3072.0, 28.0, 24576.0, 256000.0, 16.0, 16.0, true, true),
    ),
    (
        "GPT2Config",
        shape(768.0, 12.0, 3072.0, 50257.0, 12.0, 12.0, false, true),
    ),
    (
        "BertConfig",
        shape(768.0, 12.0, 3072.0, 30522.0, 12.0, 12.0, false, true),
    ),
    (
        "GPTNeoXConfig",
        shape(6144.0, 44.0, 24576.0, 50432.0, 64.0, 64.0, false, false),
    ),
];

#[allow(clippy::too_many_arguments)]
const fn shape(
    hidden: f64,
    layers: f64,
    intermediate: f64,
    vocab: f64,
    heads: f64,
    kv_heads: f64,
    gated: bool,
    tied_embeddings: bool,
) -> TransformerShape {
    TransformerShape {
        hidden,
        layers,
        intermediate,
        vocab,
        heads,
        kv_heads,
        gated,
        tied_embeddings,
    }
}

/// Keyword names of config fields, by meaning (transformers uses both spellings).
pub const CONFIG_HIDDEN: &[&str] = &["hidden_size", "n_embd", "d_model"];
pub const CONFIG_LAYERS: &[&str] = &["num_hidden_layers", "n_layer", "num_layers"];
pub const CONFIG_INTERMEDIATE: &[&str] = &["intermediate_size", "n_inner", "d_ff"];
pub const CONFIG_VOCAB: &[&str] = &["vocab_size"];
pub const CONFIG_HEADS: &[&str] = &["num_attention_heads", "n_head", "num_heads"];
pub const CONFIG_KV_HEADS: &[&str] = &["num_key_value_heads"];

// ---------------------------------------------------------------------------------------------
// How findings combine into a mode
// ---------------------------------------------------------------------------------------------

fn is_unguarded_gpu_use(f: &Finding) -> bool {
    matches!(
        f.kind,
        FindingKind::DeviceUse | FindingKind::CudaCall | FindingKind::GpuLibrary
    ) && !f.guarded
        || f.kind == FindingKind::GpuRequired
}

fn is_gpu_capable(f: &Finding) -> bool {
    // `nvidia-smi` run for metrics is no GPU work by itself.
    if f.kind == FindingKind::AvailabilityCheck && f.detail.contains("nvidia-smi") {
        return false;
    }
    matches!(
        f.kind,
        FindingKind::FrameworkImport
            | FindingKind::GpuLibrary
            | FindingKind::DeviceUse
            | FindingKind::CudaCall
            | FindingKind::AvailabilityCheck
            | FindingKind::ModelLoad
            | FindingKind::Training
    )
}

fn is_heavy(f: &Finding) -> bool {
    match f.kind {
        FindingKind::ModelLoad | FindingKind::LargeTensor => f.heavy,
        FindingKind::Training => true,
        _ => false,
    }
}

/// "`x` at func.py:3 (and 2 more)".
fn first_of<'a>(mut it: impl Iterator<Item = &'a Finding>) -> Option<String> {
    let first = it.next()?;
    let more = it.count();
    let mut s = format!("{} at {}", first.detail, first.location());
    if more > 0 {
        s.push_str(&format!(" (and {more} more)"));
    }
    Some(s)
}

fn frameworks(findings: &[Finding]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for f in findings {
        if f.kind == FindingKind::FrameworkImport {
            let root = f.detail.split(['.', ' ']).next().unwrap_or("");
            if !root.is_empty() && !names.contains(&root) {
                names.push(root);
            }
        }
    }
    if names.is_empty() {
        "a GPU-capable library".to_owned()
    } else {
        names.truncate(3);
        names.join(", ")
    }
}

fn guard_phrase(findings: &[Finding]) -> Option<String> {
    let guarded: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.guarded && matches!(f.kind, FindingKind::DeviceUse | FindingKind::CudaCall)
                || f.kind == FindingKind::AvailabilityCheck
        })
        .collect();
    let check = findings
        .iter()
        .find(|f| f.kind == FindingKind::AvailabilityCheck);
    match (guarded.is_empty(), check) {
        (true, _) => None,
        (false, Some(c)) => Some(format!(
            "its CUDA use is guarded by {} ({})",
            c.detail,
            c.location()
        )),
        (false, None) => Some("its GPU use is guarded (has a CPU path)".to_owned()),
    }
}

/// Is anything placed on a GPU (device use, CUDA calls, a GPU library, or a framework that places
/// its models by itself)? A heavy model without any of these runs on the CPU even on a GPU node.
fn placed_on_gpu(findings: &[Finding]) -> bool {
    findings.iter().any(|f| match f.kind {
        FindingKind::DeviceUse | FindingKind::CudaCall | FindingKind::GpuLibrary => true,
        FindingKind::FrameworkImport => {
            let root = f.detail.split(['.', ' ']).next().unwrap_or("");
            SELF_PLACING_FRAMEWORKS.contains(&root)
        }
        _ => false,
    })
}

/// The mode for these findings and a one-line rationale. `entry`: the entry file chosen for a
/// function of several files (named in the rationale).
pub fn decide(
    findings: &[Finding],
    fallback_files: &[String],
    entry: Option<&str>,
    runs_model: bool,
) -> (ExecutionMode, String) {
    let (mode, mut why) = if let Some(what) =
        first_of(findings.iter().filter(|f| is_unguarded_gpu_use(f)))
    {
        (
            ExecutionMode::Gpu,
            format!("needs a GPU: {what}, with no CPU fallback"),
        )
    } else if findings.iter().any(is_gpu_capable) {
        // A named model says most: prefer `from_pretrained` / pipelines in the rationale.
        let mut heavy_list: Vec<&Finding> = findings.iter().filter(|f| is_heavy(f)).collect();
        heavy_list.sort_by_key(|f| !f.detail.contains("from_pretrained"));
        let heavy = first_of(heavy_list.iter().copied());
        let guard = guard_phrase(findings);
        let never_placed = runs_model
            && !heavy_list.is_empty()
            && heavy_list.iter().all(|f| f.kind == FindingKind::ModelLoad)
            && !placed_on_gpu(findings);
        match heavy {
            Some(what) if never_placed => (
                ExecutionMode::CpuPreferred,
                format!(
                    "{what} is never placed on a GPU (no .to(...), device=, device_map= or \
                     framework that places it): it runs on the CPU even on a GPU node, so it \
                     starts on CPU"
                ),
            ),
            Some(what) => {
                let kind = heavy_list
                    .first()
                    .map_or("heavy tensor work", |f| match f.kind {
                        FindingKind::Training => "training",
                        FindingKind::LargeTensor => "large tensors",
                        _ if f.detail.contains("GFLOPs") => "a big vision model",
                        _ => "large-model inference",
                    });
                let fallback = guard
                    .map(|g| format!("; {g}, so it can fall back to CPU"))
                    .unwrap_or_default();
                (
                    ExecutionMode::GpuPreferred,
                    format!("{kind}: {what}{fallback}"),
                )
            }
            None => {
                let mut parts = vec![frameworks(findings)];
                if let Some(g) = guard {
                    parts.push(g);
                }
                let light_models: Vec<&Finding> = findings
                    .iter()
                    .filter(|f| f.kind == FindingKind::ModelLoad)
                    .collect();
                let dynamic = findings.iter().find(|f| {
                    matches!(
                        f.kind,
                        FindingKind::RuntimeSizedTensor | FindingKind::TensorOp
                    )
                });
                if let Some(model) = light_models.first() {
                    if model.detail.contains("size unknown") {
                        parts.push(format!(
                            "{}: nothing in the code tells its size",
                            model.detail
                        ));
                    } else {
                        parts.push(format!("{} is light", model.detail));
                    }
                }
                if findings
                    .iter()
                    .any(|f| f.kind == FindingKind::RuntimeSizedTensor)
                {
                    let op = findings
                        .iter()
                        .find(|f| f.kind == FindingKind::TensorOp)
                        .or(dynamic);
                    if let Some(op) = op {
                        parts.push(format!(
                            "{} ({}) on request-sized tensors: intensity depends on request sizes",
                            op.detail,
                            op.location()
                        ));
                    }
                } else if let Some(op) = dynamic {
                    parts.push(format!("{} ({})", op.detail, op.location()));
                }
                (
                    ExecutionMode::CpuPreferred,
                    format!(
                        "{}; light or unknown intensity, so the runtime decides",
                        parts.join("; ")
                    ),
                )
            }
        }
    } else {
        let libs: Vec<&str> = findings
            .iter()
            .filter(|f| f.kind == FindingKind::CpuLibraryImport)
            .map(|f| f.detail.as_str())
            .collect();
        let mut uniq: Vec<&str> = Vec::new();
        for l in libs {
            if !uniq.contains(&l) {
                uniq.push(l);
            }
        }
        if uniq.is_empty() {
            (
                ExecutionMode::Cpu,
                "nothing that can use a GPU (no GPU-capable framework, no device use)".to_owned(),
            )
        } else {
            uniq.truncate(4);
            (
                ExecutionMode::Cpu,
                format!(
                    "only CPU libraries ({}): nothing that can use a GPU",
                    uniq.join(", ")
                ),
            )
        }
    };
    if let Some(e) = entry {
        why.push_str(&format!(" [entry: {e}]"));
    }
    if !fallback_files.is_empty() {
        why.push_str(&format!(
            " [token-level scan used for {}: the parser could not read it]",
            fallback_files.join(", ")
        ));
    }
    (
        mode,
        verdict::one_line(&why, verdict::MAX_CLASSIFIER_RATIONALE_CHARS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_automaton_picks_what_a_plain_search_picks() {
        let plain = |norm: &str| {
            KNOWN_MODELS
                .iter()
                .filter(|k| norm.contains(k.fragment))
                .max_by_key(|k| k.fragment.len())
                .map(|k| k.fragment)
        };
        // Every fragment, inside names, and pairs of fragments in one name.
        let mut names: Vec<String> = KNOWN_MODELS
            .iter()
            .flat_map(|k| {
                [
                    k.fragment.to_string(),
                    format!("org{}v2finetuned", k.fragment),
                ]
            })
            .collect();
        for (a, b) in KNOWN_MODELS.iter().zip(KNOWN_MODELS.iter().rev()) {
            names.push(format!("{}{}", a.fragment, b.fragment));
        }
        names.extend(["", "nothing", "resnet", "yolov8xl"].map(String::from));
        for n in &names {
            assert_eq!(known_model(n).map(|k| k.fragment), plain(n), "{n}");
        }
    }

    #[test]
    fn sizes_are_read_from_names() {
        let cases = [
            ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", Some(1.1e9)),
            ("meta-llama/Llama-2-7b-chat-hf", Some(7e9)),
            ("bigscience/bloom-560m", Some(560e6)),
            ("mistralai/Mixtral-8x7B-v0.1", Some(56e9)),
            ("Qwen/Qwen2.5-0.5B-Instruct", Some(0.5e9)),
            ("bert-base-uncased", None),
            ("v1.0", None),
        ];
        for (name, want) in cases {
            let got = params_from_name(name);
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() / w < 1e-6, "{name}: {g}"),
                (g, w) => assert_eq!(g, w, "{name}"),
            }
        }
    }

    #[test]
    fn the_table_separates_light_from_heavy() {
        assert!(!model_size("resnet18").is_heavy());
        assert!(!model_size("resnet34").is_heavy());
        assert!(model_size("resnet50").is_heavy());
        assert!(model_size("resnet152").is_heavy());
        assert!(model_size("google/vit-large-patch16-224").is_heavy());
        assert!(!model_size("sentence-transformers/all-MiniLM-L6-v2").is_heavy());
        assert!(!model_size("distilbert-base-uncased").is_heavy());
        assert!(model_size("TinyLlama/TinyLlama-1.1B-Chat-v1.0").is_heavy());
        assert!(model_size("runwayml/stable-diffusion-v1-5").is_heavy());
        assert!(!model_size("gpt2").is_heavy());
        assert!(model_size("gpt2-xl").is_heavy());
    }

    #[test]
    fn tinyllama_config_is_about_1_1b() {
        let s = TransformerShape {
            hidden: 2048.0,
            layers: 22.0,
            intermediate: 5632.0,
            vocab: 32000.0,
            heads: 32.0,
            kv_heads: 4.0,
            gated: true,
            tied_embeddings: false,
        };
        let p = s.params();
        assert!((1.05e9..1.15e9).contains(&p), "{p}");
    }

    #[test]
    fn device_strings() {
        assert_eq!(device_string("cuda"), DeviceString::Gpu);
        assert_eq!(device_string("cuda:1"), DeviceString::Gpu);
        assert_eq!(device_string("/GPU:0"), DeviceString::Gpu);
        assert_eq!(device_string("/device:GPU:0"), DeviceString::Gpu);
        assert_eq!(device_string("auto"), DeviceString::Auto);
        assert_eq!(device_string("cpu"), DeviceString::Other);
        assert_eq!(device_string("mps"), DeviceString::Other);
    }
}
