//! Table-driven classifier tests: one snippet (or small project) per row, with the expected mode
//! and the finding kinds that must (and must not) be reported.

#[path = "support/table.rs"]
mod table;

use gaia_classifier::{Classification, FindingKind as K, SourceFile};
use gaia_contract::ExecutionMode::{self, Cpu, CpuPreferred, Gpu, GpuPreferred};
use table::{check, run, Case};

/// A row without words the rationale must hold.
const fn case(
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    mode: ExecutionMode,
    has: &'static [K],
    lacks: &'static [K],
) -> Case {
    table::case(name, files, mode, has, lacks, &[])
}

const CASES: &[Case] = &[
    // --- nothing GPU-related -------------------------------------------------------------------
    case("empty file", &[("func.py", "")], Cpu, &[], &[K::FrameworkImport]),
    case(
        "pure python sleep",
        &[("func.py", "import time\n\ndef handle(req):\n    time.sleep(2)\n    return {}\n")],
        Cpu,
        &[],
        &[K::FrameworkImport],
    ),
    case(
        "numpy pandas sklearn etl",
        &[(
            "func.py",
            "import numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import LinearRegression\n\ndef handle(req):\n    df = pd.DataFrame(req['rows'])\n    m = LinearRegression().fit(df[['x']], df['y'])\n    return {'coef': float(np.asarray(m.coef_)[0])}\n",
        )],
        Cpu,
        &[K::CpuLibraryImport],
        &[K::FrameworkImport, K::Training],
    ),
    case(
        "torch only in a docstring, a comment and a string",
        &[(
            "func.py",
            "\"\"\"import torch\nmodel.cuda()\n\"\"\"\n# import torch; x.cuda()\nCODE = 'import cupy; x.to(\"cuda\")'\n\ndef handle(req):\n    return {'code': CODE}\n",
        )],
        Cpu,
        &[],
        &[K::FrameworkImport, K::DeviceUse, K::GpuLibrary],
    ),
    case(
        "a local function named cuda",
        &[("func.py", "def cuda():\n    return 'fast'\n\ndef handle(req):\n    return cuda()\n")],
        Cpu,
        &[],
        &[K::DeviceUse],
    ),
    case(
        "plain numba jit is CPU",
        &[("func.py", "import numba\n\n@numba.jit(nopython=True)\ndef f(x):\n    return x * 2\n")],
        Cpu,
        &[K::CpuLibraryImport],
        &[K::GpuLibrary],
    ),
    // --- GPU-capable, light or unknown ---------------------------------------------------------
    case(
        "torch imported, nothing else",
        &[("func.py", "import torch\n\ndef handle(req):\n    return {'v': torch.__version__}\n")],
        CpuPreferred,
        &[K::FrameworkImport],
        &[K::DeviceUse],
    ),
    case(
        "guarded .cuda()",
        &[(
            "func.py",
            "import torch\nmodel = torch.nn.Linear(4, 4)\nif torch.cuda.is_available():\n    model = model.cuda()\n",
        )],
        CpuPreferred,
        &[K::DeviceUse, K::AvailabilityCheck],
        &[],
    ),
    case(
        "device variable from a conditional expression, passed on",
        &[(
            "func.py",
            "import torch\ndevice = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\n\ndef handle(req):\n    n = int(req.get('n', 10))\n    a = torch.rand(n, n, device=device)\n    return float((a @ a).sum())\n",
        )],
        CpuPreferred,
        &[K::DeviceUse, K::RuntimeSizedTensor, K::TensorOp],
        &[],
    ),
    case(
        "device chosen by assignment inside an availability check",
        &[(
            "func.py",
            "import torch\ndevice = 'cpu'\nif torch.cuda.is_available():\n    device = 'cuda'\nx = torch.zeros(3).to(device)\n",
        )],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "device from a helper function with a guarded return",
        &[(
            "func.py",
            "import torch\n\ndef get_device():\n    if torch.cuda.is_available():\n        return torch.device('cuda')\n    return torch.device('cpu')\n\nmodel = torch.nn.Linear(2, 2).to(get_device())\n",
        )],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "synchronize guarded by a device comparison",
        &[(
            "func.py",
            "import torch\ndevice = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\nif device.type == 'cuda':\n    torch.cuda.synchronize()\n",
        )],
        CpuPreferred,
        &[K::CudaCall],
        &[],
    ),
    case(
        "early return when no GPU guards what follows",
        &[(
            "func.py",
            "import torch\n\ndef handle(x):\n    if not torch.cuda.is_available():\n        return x.sum()\n    return x.cuda().sum()\n",
        )],
        CpuPreferred,
        &[K::DeviceUse],
        &[K::GpuRequired],
    ),
    case(
        "use_gpu switch",
        &[("func.py", "import torch\nUSE_GPU = False\nm = torch.nn.Linear(2, 2)\nif USE_GPU:\n    m.cuda()\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "try/except around .cuda()",
        &[("func.py", "import torch\nm = torch.nn.Linear(2, 2)\ntry:\n    m = m.cuda()\nexcept RuntimeError:\n    pass\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "cupy with a numpy fallback",
        &[(
            "func.py",
            "try:\n    import cupy as xp\nexcept ImportError:\n    import numpy as xp\n\ndef handle(req):\n    return float(xp.fft.fft(xp.ones(8)).real.sum())\n",
        )],
        CpuPreferred,
        &[K::GpuLibrary],
        &[],
    ),
    case(
        "guarded torch import",
        &[("func.py", "try:\n    import torch\nexcept ImportError:\n    torch = None\n")],
        CpuPreferred,
        &[K::FrameworkImport],
        &[],
    ),
    case(
        "safe torch.cuda calls",
        &[("func.py", "import torch\ntorch.cuda.manual_seed_all(0)\nprint(torch.cuda.device_count())\n")],
        CpuPreferred,
        &[K::AvailabilityCheck],
        &[K::CudaCall],
    ),
    case(
        "dtype conversion is not a device",
        &[("func.py", "import torch\nx = torch.zeros(3).to(torch.float16)\n")],
        CpuPreferred,
        &[],
        &[K::DeviceUse],
    ),
    case(
        "device from a parameter is unknown, not GPU",
        &[("func.py", "import torch\n\ndef run(model, device):\n    return model.to(device)\n")],
        CpuPreferred,
        &[],
        &[K::DeviceUse],
    ),
    case(
        "self.cuda() of a class that defines cuda",
        &[(
            "func.py",
            "import torch\n\nclass Box:\n    def cuda(self):\n        return self\n    def go(self):\n        return self.cuda()\n",
        )],
        CpuPreferred,
        &[],
        &[K::DeviceUse],
    ),
    case(
        "cuda use only under __main__",
        &[("func.py", "import torch\nm = torch.nn.Linear(2, 2)\nif __name__ == '__main__':\n    m.cuda()\n")],
        CpuPreferred,
        &[],
        &[K::DeviceUse],
    ),
    case(
        "device_map auto is a GPU-capable fallback",
        &[(
            "func.py",
            "from transformers import AutoModelForSequenceClassification\nm = AutoModelForSequenceClassification.from_pretrained('distilbert-base-uncased', device_map='auto')\n",
        )],
        CpuPreferred,
        &[K::DeviceUse, K::ModelLoad],
        &[],
    ),
    case(
        "small pipeline with the task default model",
        &[("func.py", "from transformers import pipeline\nclf = pipeline('sentiment-analysis')\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "pipeline device chosen by availability",
        &[(
            "func.py",
            "import torch\nfrom transformers import pipeline\ndevice = 0 if torch.cuda.is_available() else -1\ngen = pipeline('text-generation', model='gpt2', device=device)\n",
        )],
        CpuPreferred,
        &[K::DeviceUse, K::ModelLoad],
        &[],
    ),
    case(
        "resnet18 is light",
        &[("func.py", "from torchvision import models\nnet = models.resnet18(weights=None).eval()\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "small sentence encoder",
        &[(
            "func.py",
            "from sentence_transformers import SentenceTransformer\nenc = SentenceTransformer('sentence-transformers/all-MiniLM-L6-v2')\n",
        )],
        CpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "small constant tensor",
        &[("func.py", "import torch\nx = torch.rand(64, 64)\n")],
        CpuPreferred,
        &[],
        &[K::LargeTensor],
    ),
    case("jax", &[("func.py", "import jax.numpy as jnp\nx = jnp.ones((3, 3))\n")], CpuPreferred, &[K::FrameworkImport], &[]),
    case(
        "accelerate picks a GPU when there is one",
        &[("func.py", "from accelerate import Accelerator\nacc = Accelerator()\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
    ),
    // --- heavy work with a fallback ------------------------------------------------------------
    case(
        "training loop",
        &[(
            "func.py",
            "import torch\nmodel = torch.nn.Linear(8, 1)\nopt = torch.optim.AdamW(model.parameters())\nfor _ in range(10):\n    loss = model(torch.rand(4, 8)).pow(2).mean()\n    loss.backward()\n    opt.step()\n",
        )],
        GpuPreferred,
        &[K::Training],
        &[],
    ),
    case(
        "keras fit",
        &[(
            "func.py",
            "import tensorflow as tf\nm = tf.keras.Sequential([tf.keras.layers.Dense(1)])\nm.compile('adam', 'mse')\nm.fit(x, y, epochs=3)\n",
        )],
        GpuPreferred,
        &[K::Training],
        &[],
    ),
    case(
        "7B model by name",
        &[(
            "func.py",
            "from transformers import AutoModelForCausalLM\nm = AutoModelForCausalLM.from_pretrained('meta-llama/Llama-2-7b-hf')\n",
        )],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "model name from an environment default",
        &[(
            "func.py",
            "import os\nfrom transformers import AutoModelForCausalLM\nMODEL = os.environ.get('MODEL', 'mistralai/Mistral-7B-Instruct-v0.2')\nm = AutoModelForCausalLM.from_pretrained(MODEL, device_map='auto')\n",
        )],
        GpuPreferred,
        &[K::ModelLoad, K::DeviceUse],
        &[],
    ),
    case(
        "stable diffusion pipeline",
        &[(
            "func.py",
            "from diffusers import StableDiffusionPipeline\npipe = StableDiffusionPipeline.from_pretrained('runwayml/stable-diffusion-v1-5')\n",
        )],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "resnet152 is heavy",
        &[("func.py", "import torchvision\nnet = torchvision.models.resnet152(weights=None)\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "vit large through timm",
        &[("func.py", "import timm\nm = timm.create_model('vit_large_patch16_224', pretrained=False)\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "whisper large",
        &[("func.py", "import whisper\nm = whisper.load_model('large-v3')\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "large constant tensor",
        &[("func.py", "import torch\nN = 8192\na = torch.rand(N, N)\nb = a @ a\n")],
        GpuPreferred,
        &[K::LargeTensor, K::TensorOp],
        &[],
    ),
    case(
        "config-built 7B llama",
        &[(
            "func.py",
            "from transformers import LlamaConfig, LlamaForCausalLM\nm = LlamaForCausalLM(LlamaConfig())\n",
        )],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    // --- unguarded GPU use ---------------------------------------------------------------------
    case("unguarded .cuda()", &[("func.py", "import torch\nm = torch.nn.Linear(2, 2).cuda()\n")], Gpu, &[K::DeviceUse], &[]),
    case("aliased torch, .to('cuda:1')", &[("func.py", "import torch as t\nx = t.zeros(3).to('cuda:1')\n")], Gpu, &[K::DeviceUse], &[]),
    case("torch.device('cuda') unconditionally", &[("func.py", "import torch\ndev = torch.device('cuda')\n")], Gpu, &[K::DeviceUse], &[]),
    case("device variable assigned 'cuda'", &[("func.py", "import torch\ndevice = 'cuda'\nx = torch.ones(2).to(device)\n")], Gpu, &[K::DeviceUse], &[]),
    case("device='cuda' keyword", &[("func.py", "import torch\nx = torch.zeros(3, device='cuda')\n")], Gpu, &[K::DeviceUse], &[]),
    case(
        "device_map='cuda'",
        &[("func.py", "from transformers import AutoModel\nm = AutoModel.from_pretrained('bert-base-uncased', device_map='cuda')\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "tf.device('/GPU:0')",
        &[("func.py", "import tensorflow as tf\nwith tf.device('/GPU:0'):\n    y = tf.matmul(a, b)\n")],
        Gpu,
        &[K::DeviceUse, K::TensorOp],
        &[],
    ),
    case("import cupy", &[("func.py", "import cupy as cp\nx = cp.arange(10)\n")], Gpu, &[K::GpuLibrary], &[]),
    case(
        "numba.cuda kernel",
        &[("func.py", "from numba import cuda\n\n@cuda.jit\ndef add(a, b):\n    i = cuda.grid(1)\n    a[i] += b[i]\n")],
        Gpu,
        &[K::GpuLibrary],
        &[],
    ),
    case("numba.cuda through numba", &[("func.py", "import numba\n\n@numba.cuda.jit\ndef k(a):\n    pass\n")], Gpu, &[K::GpuLibrary], &[]),
    case("unguarded synchronize", &[("func.py", "import torch\ntorch.cuda.synchronize()\n")], Gpu, &[K::CudaCall], &[]),
    case(
        "aliased torch.cuda function",
        &[("func.py", "from torch.cuda import empty_cache as free\nimport torch\nfree()\n")],
        Gpu,
        &[K::CudaCall],
        &[],
    ),
    case("assert a GPU", &[("func.py", "import torch\nassert torch.cuda.is_available()\n")], Gpu, &[K::GpuRequired], &[]),
    case(
        "raise without a GPU",
        &[("func.py", "import torch\nif not torch.cuda.is_available():\n    raise RuntimeError('needs a GPU')\n")],
        Gpu,
        &[K::GpuRequired],
        &[],
    ),
    case(
        "import inside a function",
        &[("func.py", "def handle(req):\n    import torch\n    return torch.zeros(3).cuda().sum().item()\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "self.device set to cuda in __init__",
        &[(
            "func.py",
            "import torch\n\nclass Model:\n    def __init__(self):\n        self.device = torch.device('cuda')\n    def run(self, x):\n        return x.to(self.device)\n",
        )],
        Gpu,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "device from an environment default of cuda",
        &[("func.py", "import os, torch\ndevice = torch.device(os.getenv('DEVICE', 'cuda'))\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "size-based dispatch is not an availability check",
        &[("func.py", "import torch\n\ndef handle(x, n):\n    return x.to('cuda' if n > 1000 else 'cpu')\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "pipeline on device 0",
        &[("func.py", "from transformers import pipeline\np = pipeline('fill-mask', model='distilroberta-base', device=0)\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "xgboost on cuda",
        &[("func.py", "import xgboost as xgb\nclf = xgb.XGBClassifier(device='cuda')\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
    ),
    // --- PEP 701 f-strings: parsed (rustpython-parser 0.4 could not, and they went to the fallback)
    case(
        "PEP 701 f-string with unguarded cuda",
        &[("func.py", "import torch\nname = f\"{\"x\"}\"\nmodel = torch.nn.Linear(2, 2).cuda()\n")],
        Gpu,
        &[K::DeviceUse],
        &[K::ParseFallback],
    ),
    case(
        "PEP 701 f-string with guarded cuda",
        &[(
            "func.py",
            "import torch\nname = f\"{\"x\"}\"\nmodel = torch.nn.Linear(2, 2)\nif torch.cuda.is_available():\n    model = model.cuda()\n",
        )],
        CpuPreferred,
        &[K::DeviceUse],
        &[K::ParseFallback],
    ),
    // --- the token-level fallback --------------------------------------------------------------
    case(
        "syntax error with unguarded cuda",
        &[("func.py", "import torch\nprint 'py2'\nmodel = torch.nn.Linear(2, 2).cuda()\n")],
        Gpu,
        &[K::ParseFallback, K::DeviceUse],
        &[],
    ),
    case(
        "syntax error with guarded cuda",
        &[(
            "func.py",
            "import torch\nprint 'py2'\nmodel = torch.nn.Linear(2, 2)\nif torch.cuda.is_available():\n    model = model.cuda()\n",
        )],
        CpuPreferred,
        &[K::ParseFallback, K::DeviceUse],
        &[],
    ),
    case(
        "syntax error with cupy",
        &[("func.py", "import cupy\ndef broken(:\n    pass\n")],
        Gpu,
        &[K::ParseFallback, K::GpuLibrary],
        &[],
    ),
    case(
        "syntax error with a 7b from_pretrained",
        &[("func.py", "from transformers import AutoModelForCausalLM\nm = AutoModelForCausalLM.from_pretrained(\"mistralai/Mistral-7B-v0.1\")\nprint 'py2'\n")],
        GpuPreferred,
        &[K::ParseFallback, K::ModelLoad],
        &[],
    ),
    // --- multi-file ----------------------------------------------------------------------------
    case(
        "relative import reaches unguarded cuda",
        &[
            ("func.py", "from .model import load\nm = load()\n"),
            ("model.py", "import torch\n\ndef load():\n    return torch.nn.Linear(2, 2).cuda()\n"),
            ("__init__.py", ""),
        ],
        Gpu,
        &[K::DeviceUse],
        &[],
    ),
    case(
        "absolute import of a local module",
        &[
            ("func.py", "import helpers\nm = helpers.load()\n"),
            ("helpers.py", "from transformers import AutoModelForCausalLM\n\ndef load():\n    return AutoModelForCausalLM.from_pretrained('Qwen/Qwen2-7B')\n"),
        ],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "constant from another module",
        &[
            ("func.py", "from .model import load\n"),
            ("config.py", "MODEL_ID = 'meta-llama/Meta-Llama-3-8B-Instruct'\n"),
            ("model.py", "from transformers import AutoModelForCausalLM\nfrom .config import MODEL_ID\n\ndef load():\n    return AutoModelForCausalLM.from_pretrained(MODEL_ID)\n"),
        ],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
    ),
    case(
        "a training script beside the function is not counted",
        &[
            ("func.py", "import torch\n\ndef handle(x):\n    return torch.as_tensor(x).sum().item()\n"),
            ("train.py", "import torch\nm = torch.nn.Linear(2, 2).cuda()\nloss = m(torch.rand(2, 2)).sum()\nloss.backward()\n"),
        ],
        CpuPreferred,
        &[K::IgnoredFile],
        &[K::Training, K::DeviceUse],
    ),
    case(
        "package layout under function/",
        &[
            ("function/__init__.py", ""),
            ("function/func.py", "from .gpu import run\n"),
            ("function/gpu.py", "import cupy\n\ndef run():\n    return cupy.zeros(3)\n"),
        ],
        Gpu,
        &[K::GpuLibrary],
        &[],
    ),
];

#[test]
fn snippets_classify_as_expected() {
    assert!(CASES.len() >= 40, "{} cases", CASES.len());
    check("snippets", CASES);
}

#[test]
fn an_empty_file_set_is_cpu() {
    let c = run(Vec::new());
    assert_eq!(c.mode, Cpu);
    assert!(c.findings.is_empty() && !c.fallback);
}

#[test]
fn guarded_flags_and_lines_are_right() {
    let c = run(vec![SourceFile::new(
        "func.py",
        "import torch\n\ndevice = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\nx = torch.zeros(2).cuda()\n",
    )]);
    assert_eq!(c.mode, Gpu);
    let uses: Vec<(u32, bool)> = c
        .findings
        .iter()
        .filter(|f| f.kind == K::DeviceUse)
        .map(|f| (f.line, f.guarded))
        .collect();
    assert_eq!(uses, vec![(3, true), (4, false)]);
    assert!(c.rationale.contains("func.py:4"), "{}", c.rationale);
}

#[test]
fn json_is_stable_snake_case_in_field_order() {
    let c = run(vec![SourceFile::new("func.py", "import cupy\n")]);
    let json = serde_json::to_string(&c).expect("json");
    assert!(
        json.starts_with("{\"mode\":\"gpu\",\"rationale\":"),
        "{json}"
    );
    assert!(json.contains("\"findings\":[{\"kind\":\"gpu_library\",\"file\":\"func.py\",\"line\":1,\"detail\":\"import cupy\",\"guarded\":false,\"heavy\":false}]"), "{json}");
    assert!(json.ends_with("\"fallback\":false}"), "{json}");
    let back: Classification = serde_json::from_str(&json).expect("round trip");
    assert_eq!(back, c);
}
