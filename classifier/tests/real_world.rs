//! Table-driven tests for the patterns real serving functions use that the first examples did not
//! (issue 18): one table per pattern, each row a snippet (or small project), the expected mode,
//! the finding kinds that must (and must not) be reported, and words the rationale must hold.

#[path = "support/table.rs"]
mod table;

use gaia_classifier::{FindingKind as K, SourceFile};
use gaia_contract::ExecutionMode::{Cpu, CpuPreferred, Gpu, GpuPreferred};
use table::{case, check, run, Case};

// 1. Unknown model size is not "light" -------------------------------------------------------------

const MODEL_SIZE: &[Case] = &[
    case(
        "YOLO from a .pt path is heavy: every variant is",
        &[("func.py", "import os\nfrom ultralytics import YOLO\nmodel = YOLO(os.path.join(os.environ['MODEL_DIR'], 'best.pt'))\n\ndef handle(req):\n    return model(req['image'])[0].boxes.xyxy.tolist()\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
        &["size unknown", "every YOLO variant is heavy"],
    ),
    case(
        "YOLO with a named small checkpoint uses the table",
        &[("func.py", "from ultralytics import YOLO\nmodel = YOLO('yolov8n.pt')\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
        &["8.7 GFLOPs"],
    ),
    case(
        "text-generation pipeline from a model directory is an LLM",
        &[("func.py", "from transformers import pipeline\n\ndef load(model_dir):\n    return pipeline('text-generation', model=model_dir, device_map='auto')\n")],
        GpuPreferred,
        &[K::ModelLoad, K::DeviceUse],
        &[],
        &["size unknown", "text-generation"],
    ),
    case(
        "sentiment pipeline from a directory: like its default, light",
        &[("func.py", "import torch\nfrom transformers import pipeline\n\ndef load(model_dir):\n    return pipeline('sentiment-analysis', model=model_dir, device=0 if torch.cuda.is_available() else -1)\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[],
        &["size unknown"],
    ),
    case(
        "causal LM from a path: the class says LLM",
        &[("func.py", "import torch\nfrom transformers import AutoModelForCausalLM\n\ndef load(path):\n    dev = 'cuda' if torch.cuda.is_available() else 'cpu'\n    return AutoModelForCausalLM.from_pretrained(path).to(dev)\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
        &["size unknown", "ForCausalLM"],
    ),
    case(
        "sequence classifier from a path: size unknown, said so",
        &[("func.py", "from transformers import AutoModelForSequenceClassification\n\ndef load(path):\n    return AutoModelForSequenceClassification.from_pretrained(path)\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[],
        &["size unknown", "nothing in the code tells its size"],
    ),
    case(
        "size in a neighbouring name",
        &[("func.py", "import torch\nfrom transformers import AutoModel\nresnet152_dir = '/models/' + 'current'\ndevice = 'cuda' if torch.cuda.is_available() else 'cpu'\nmodel = AutoModel.from_pretrained(resnet152_dir).to(device)\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
        &["11.5 GFLOPs"],
    ),
    case(
        "size in the file name of an f-string path",
        &[("func.py", "import torch\nroot = '/opt/ml'\ndevice = 'cuda' if torch.cuda.is_available() else 'cpu'\nmodel = torch.jit.load(f'{root}/vit_large_patch16.pt', map_location=device)\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
        &["GFLOPs"],
    ),
    case(
        "onnx file with no size anywhere: unknown, not light",
        &[("func.py", "import onnxruntime as ort\nsess = ort.InferenceSession('model.onnx')\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[],
        &["size unknown"],
    ),
    case(
        "keras model file: size unknown",
        &[("func.py", "import tensorflow as tf\nmodel = tf.keras.models.load_model('/opt/model.h5')\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[],
        &["size unknown"],
    ),
];

#[test]
fn unknown_model_size_is_not_light() {
    check("model size", MODEL_SIZE);
}

// 2. A guard at the call site is carried into the callee ------------------------------------------

const CALL_SITE_GUARDS: &[Case] = &[
    case(
        "has_gpu() wrapper chooses a cupy callee in the same module",
        &[("func.py", "import numpy as np\nimport torch\n\ndef has_gpu():\n    return torch.cuda.is_available()\n\ndef run_gpu(x):\n    import cupy as cp\n    return cp.asnumpy(cp.sort(cp.asarray(x)))\n\ndef run_cpu(x):\n    return np.sort(x)\n\ndef handle(x):\n    if has_gpu():\n        return run_gpu(x)\n    else:\n        return run_cpu(x)\n")],
        CpuPreferred,
        &[K::GpuLibrary],
        &[],
        &[],
    ),
    case(
        "a guard function with an unremarkable name, in another module",
        &[
            ("func.py", "import torch\nfrom .probe import accelerated_ok\nfrom .fast import infer_fast\n\ndef handle(x):\n    if accelerated_ok():\n        return infer_fast(x)\n    return torch.as_tensor(x).sum().item()\n"),
            ("probe.py", "import torch\n\ndef accelerated_ok():\n    return torch.cuda.is_available()\n"),
            ("fast.py", "import torch\n\ndef infer_fast(x):\n    t = torch.as_tensor(x).cuda()\n    torch.cuda.synchronize()\n    return t.sum().item()\n"),
        ],
        CpuPreferred,
        &[K::DeviceUse, K::CudaCall],
        &[],
        &[],
    ),
    case(
        "the test names no GPU but calls a wrapper of is_available",
        &[("func.py", "import torch\n\ndef ready():\n    return torch.cuda.is_available()\n\ndef fast(t):\n    return t.cuda() * 2\n\ndef handle(t):\n    if ready():\n        return fast(t)\n    return t * 2\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "module.function call under the guard",
        &[
            ("main.py", "import torch\nimport gpu_impl\n\ndef handle(x):\n    if torch.cuda.is_available():\n        return gpu_impl.run(x)\n    return x\n"),
            ("gpu_impl.py", "import torch\n\ndef run(x):\n    return torch.as_tensor(x).to('cuda').sum().item()\n"),
        ],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &["entry: main.py"],
    ),
    case(
        "chain of helpers: the guard reaches two levels down",
        &[("func.py", "import torch\n\ndef inner(t):\n    return t.cuda()\n\ndef outer(t):\n    return inner(t) + 1\n\ndef handle(t):\n    if torch.cuda.is_available():\n        return outer(t)\n    return t\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "a method called only under self.use_cuda",
        &[("func.py", "import torch\n\nclass M:\n    def __init__(self):\n        self.use_cuda = torch.cuda.is_available()\n\n    def _gpu(self, t):\n        return t.cuda()\n\n    def __call__(self, t):\n        if self.use_cuda:\n            return self._gpu(t)\n        return t\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "callee chosen by a guarded conditional expression",
        &[("func.py", "import torch\n\ndef on_gpu(t):\n    return t.cuda()\n\ndef on_cpu(t):\n    return t\n\ndef handle(t):\n    run = on_gpu if torch.cuda.is_available() else on_cpu\n    return run(t)\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "module with top-level cupy imported only under the guard",
        &[
            ("main.py", "import numpy as np\n\ndef handle(x):\n    if has_gpu():\n        import kernels\n        return kernels.go(x)\n    return np.asarray(x)\n\ndef has_gpu():\n    try:\n        import cupy\n        return cupy.cuda.runtime.getDeviceCount() > 0\n    except Exception:\n        return False\n"),
            ("kernels.py", "import cupy as cp\n\ndef go(x):\n    return cp.asnumpy(cp.asarray(x) * 2)\n"),
        ],
        CpuPreferred,
        &[K::GpuLibrary],
        &[],
        &[],
    ),
    case(
        "also called without the guard: no CPU path",
        &[("func.py", "import torch\n\ndef fast(t):\n    return t.cuda()\n\ndef warm(t):\n    return fast(t)\n\ndef handle(t):\n    if torch.cuda.is_available():\n        return fast(t)\n    return t\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &["with no CPU fallback"],
    ),
    case(
        "never called from the code (the framework calls it): nothing carried",
        &[("func.py", "import torch\n\ndef handle(t):\n    return t.cuda()\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "a recursive handler no guard reaches: nothing carried",
        &[("func.py", "import torch\n\ndef handle(t, n=2):\n    if n:\n        return handle(t, n - 1)\n    return t.cuda()\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "guarded helper also called from module level: nothing carried",
        &[("func.py", "import torch\n\ndef fast(t):\n    return t.cuda()\n\nWARM = fast(torch.zeros(1))\n\ndef handle(t):\n    if torch.cuda.is_available():\n        return fast(t)\n    return t\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "passed on as a callback outside a guard: nothing carried",
        &[("func.py", "import torch\n\ndef fast(t):\n    return t.cuda()\n\ndef handle(ts):\n    return list(map(fast, ts))\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
];

#[test]
fn call_site_guards_are_carried_into_callees() {
    check("call-site guards", CALL_SITE_GUARDS);
}

// 3. GPU use outside the Python API: commands ----------------------------------------------------

const COMMANDS: &[Case] = &[
    case(
        "ffmpeg with h264_nvenc in an argument list",
        &[("func.py", "import subprocess\n\ndef handle(req):\n    subprocess.run(['ffmpeg', '-i', req['in'], '-c:v', 'h264_nvenc', req['out']], check=True)\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &["h264_nvenc"],
    ),
    case(
        "ffmpeg -hwaccel cuda in a command string",
        &[("func.py", "import os\n\ndef handle(req):\n    os.system('ffmpeg -hwaccel cuda -i in.mp4 out.mp4')\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &["-hwaccel cuda"],
    ),
    case(
        "hevc_nvenc in a list built by concatenation",
        &[("func.py", "import subprocess\nBASE = ['ffmpeg', '-y']\n\ndef handle(src):\n    cmd = BASE + ['-i', src, '-c:v', 'hevc_nvenc', 'out.mp4']\n    subprocess.check_call(cmd)\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &["hevc_nvenc"],
    ),
    case(
        "a CLI given --device cuda, unconditionally",
        &[("func.py", "import subprocess\n\ndef handle(p):\n    subprocess.run(['upscaler', '--device', 'cuda', p])\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &["--device cuda"],
    ),
    case(
        "--device=cuda:0 in a shell string",
        &[("func.py", "import subprocess\n\ndef handle(p):\n    subprocess.run(f'tool --device=cuda:0 {p}', shell=True)\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "--cuda chosen by a GPU check: guarded",
        &[("func.py", "import shutil\nimport subprocess\n\ndef handle(p):\n    if shutil.which('nvidia-smi'):\n        args = ['denoise', '--cuda', p]\n    else:\n        args = ['denoise', p]\n    subprocess.run(args)\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "command chosen by a guarded conditional expression",
        &[("func.py", "import subprocess\nimport torch\n\ndef handle(p):\n    cmd = ['ffmpeg', '-hwaccel', 'cuda', '-i', p, 'o.mp4'] if torch.cuda.is_available() else ['ffmpeg', '-i', p, 'o.mp4']\n    subprocess.run(cmd)\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "asyncio exec with nvenc spread over its arguments",
        &[("func.py", "import asyncio\n\nasync def handle(p):\n    proc = await asyncio.create_subprocess_exec('ffmpeg', '-i', p, '-c:v', 'av1_nvenc', 'o.mkv')\n    await proc.wait()\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "nvidia-smi alone is a check, not GPU work",
        &[("func.py", "import subprocess\n\ndef handle(req):\n    try:\n        subprocess.run(['nvidia-smi'], check=True)\n    except Exception:\n        pass\n    return {}\n")],
        Cpu,
        &[K::AvailabilityCheck],
        &[K::DeviceUse],
        &[],
    ),
    case(
        "software ffmpeg is no GPU use",
        &[("func.py", "import subprocess\n\ndef handle(p):\n    subprocess.run(['ffmpeg', '-i', p, '-c:v', 'libx264', 'out.mp4'])\n")],
        Cpu,
        &[],
        &[K::DeviceUse],
        &[],
    ),
];

#[test]
fn gpu_commands_are_findings() {
    check("commands", COMMANDS);
}

// 4. A heavy model never placed on a device runs on the CPU ---------------------------------------

const NEVER_PLACED: &[Case] = &[
    case(
        "7B causal LM run with generate, never placed",
        &[("func.py", "from transformers import AutoModelForCausalLM, AutoTokenizer\ntok = AutoTokenizer.from_pretrained('meta-llama/Llama-2-7b-hf')\nlm = AutoModelForCausalLM.from_pretrained('meta-llama/Llama-2-7b-hf')\n\ndef handle(req):\n    ids = tok(req['prompt'], return_tensors='pt')\n    return tok.decode(lm.generate(**ids)[0])\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[K::DeviceUse],
        &["never placed on a GPU", "runs on the CPU"],
    ),
    case(
        "resnet152 called under no_grad, never moved",
        &[("func.py", "import torch\nimport torchvision\nnet = torchvision.models.resnet152(weights=None)\n\ndef handle(req):\n    with torch.no_grad():\n        return net(torch.rand(1, 3, 224, 224)).argmax().item()\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[],
        &["never placed"],
    ),
    case(
        "diffusion pipeline called as pipe(prompt), never moved",
        &[("func.py", "from diffusers import DiffusionPipeline\npipe = DiffusionPipeline.from_pretrained('stabilityai/sdxl-turbo')\n\ndef handle(req):\n    return pipe(req['prompt']).images[0]\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[],
        &["never placed"],
    ),
    case(
        "the same model placed with device_map stays gpu_preferred",
        &[("func.py", "from transformers import AutoModelForCausalLM\nlm = AutoModelForCausalLM.from_pretrained('meta-llama/Llama-2-7b-hf', device_map='auto')\n\ndef handle(req):\n    return lm.generate(req['ids'])\n")],
        GpuPreferred,
        &[K::ModelLoad, K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "whisper places its model by itself",
        &[("func.py", "import whisper\nm = whisper.load_model('large-v3')\n\ndef handle(req):\n    return m.transcribe(req['path'])['text']\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
        &[],
    ),
    case(
        "keras places ops by itself",
        &[("func.py", "import tensorflow as tf\nnet = tf.keras.applications.ResNet152(weights=None)\n\ndef handle(req):\n    return net.predict(req['x']).tolist()\n")],
        GpuPreferred,
        &[K::ModelLoad],
        &[],
        &[],
    ),
    case(
        "placed in the self attribute of a class",
        &[("func.py", "import torch\nfrom transformers import AutoModelForCausalLM\n\nclass Model:\n    def load(self):\n        self.device = 'cuda' if torch.cuda.is_available() else 'cpu'\n        self.lm = AutoModelForCausalLM.from_pretrained('mistralai/Mistral-7B-v0.1').to(self.device)\n\n    def predict(self, ids):\n        return self.lm.generate(ids)\n")],
        GpuPreferred,
        &[K::ModelLoad, K::DeviceUse],
        &[],
        &[],
    ),
];

#[test]
fn heavy_models_never_placed_start_on_cpu() {
    check("never placed", NEVER_PLACED);
}

// 5. Quantized loading needs CUDA ---------------------------------------------------------------

const QUANTIZED: &[Case] = &[
    case(
        "load_in_4bit with device_map=auto is no CPU path",
        &[("func.py", "from transformers import AutoModelForCausalLM\nm = AutoModelForCausalLM.from_pretrained('mistralai/Mistral-7B-v0.1', load_in_4bit=True, device_map='auto')\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &["bitsandbytes"],
    ),
    case(
        "BitsAndBytesConfig(load_in_8bit=True) passed as quantization_config",
        &[("func.py", "from transformers import AutoModelForCausalLM, BitsAndBytesConfig\nq = BitsAndBytesConfig(load_in_8bit=True)\nm = AutoModelForCausalLM.from_pretrained('tiiuae/falcon-7b', quantization_config=q, device_map='balanced')\n")],
        Gpu,
        &[K::DeviceUse, K::ModelLoad],
        &[],
        &["needs CUDA"],
    ),
    case(
        "BitsAndBytesConfig is not a model load",
        &[("func.py", "import torch\nfrom transformers import BitsAndBytesConfig\nq = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16)\n")],
        Gpu,
        &[K::DeviceUse],
        &[K::ModelLoad],
        &[],
    ),
    case(
        "quantization only when a GPU is there",
        &[("func.py", "import torch\nfrom transformers import AutoModelForCausalLM\nif torch.cuda.is_available():\n    m = AutoModelForCausalLM.from_pretrained('Qwen/Qwen2-7B', load_in_8bit=True, device_map='auto')\nelse:\n    m = AutoModelForCausalLM.from_pretrained('Qwen/Qwen2-0.5B')\n")],
        GpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "load_in_8bit=False is no quantization",
        &[("func.py", "from transformers import AutoModelForSeq2SeqLM\nm = AutoModelForSeq2SeqLM.from_pretrained('t5-small', load_in_8bit=False)\n")],
        CpuPreferred,
        &[K::ModelLoad],
        &[K::DeviceUse],
        &[],
    ),
    case(
        "GPTQ config loads CUDA kernels",
        &[("func.py", "from transformers import AutoModelForCausalLM, GPTQConfig\nm = AutoModelForCausalLM.from_pretrained('org/model-gptq', quantization_config=GPTQConfig(bits=4), device_map='auto')\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
];

#[test]
fn quantized_loading_needs_cuda() {
    check("quantized", QUANTIZED);
}

// 6. Wrong evidence for a right answer ----------------------------------------------------------

const EVIDENCE: &[Case] = &[
    case(
        "gpu_id < 0 raising is validation, not 'fails without a GPU'",
        &[("func.py", "import torch\n\ndef init(gpu_id):\n    if gpu_id < 0:\n        raise ValueError('bad gpu id')\n    dev = torch.device(f'cuda:{gpu_id}' if torch.cuda.is_available() else 'cpu')\n    return torch.zeros(2).to(dev)\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[K::GpuRequired],
        &[],
    ),
    case(
        "no GPU at all still raises: gpu_required",
        &[("func.py", "import torch\nif not torch.cuda.is_available():\n    raise RuntimeError('needs a GPU')\n")],
        Gpu,
        &[K::GpuRequired],
        &[],
        &[],
    ),
    case(
        "device count below a number raises: gpu_required",
        &[("func.py", "import torch\nif torch.cuda.device_count() < 1:\n    raise RuntimeError('needs a GPU')\n")],
        Gpu,
        &[K::GpuRequired],
        &[],
        &[],
    ),
    case(
        "imports under TYPE_CHECKING do not count",
        &[("func.py", "from typing import TYPE_CHECKING\nimport numpy as np\nif TYPE_CHECKING:\n    import torch\n    import cupy\n\ndef handle(x: 'torch.Tensor'):\n    return np.asarray(x).sum()\n")],
        Cpu,
        &[K::CpuLibraryImport],
        &[K::FrameworkImport, K::GpuLibrary],
        &[],
    ),
    case(
        "typing.TYPE_CHECKING too, and its else branch counts",
        &[("func.py", "import typing\nif typing.TYPE_CHECKING:\n    import cupy\nelse:\n    import torch\n")],
        CpuPreferred,
        &[K::FrameworkImport],
        &[K::GpuLibrary],
        &[],
    ),
    case(
        "f-string device from a guarded kind",
        &[("func.py", "import torch\nkind = 'cuda' if torch.cuda.is_available() else 'cpu'\nx = torch.zeros(3).to(f'{kind}:0')\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "f-string device unguarded",
        &[("func.py", "import torch\nidx = 1\nx = torch.zeros(3).to(f'cuda:{idx}')\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "format device from a guarded kind",
        &[("func.py", "import tensorflow as tf\nkind = 'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'\nwith tf.device('/{}:0'.format(kind)):\n    y = tf.ones((2, 2))\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "format device unguarded",
        &[("func.py", "import torch\nx = torch.zeros(2).to('cuda:{}'.format(0))\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "onnxruntime CUDA provider then CPU: guarded",
        &[("func.py", "import onnxruntime as ort\ns = ort.InferenceSession('m.onnx', providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "onnxruntime CUDA provider alone",
        &[("func.py", "import onnxruntime as ort\ns = ort.InferenceSession('m.onnx', providers=['CUDAExecutionProvider'])\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "onnxruntime TensorRT provider with options, then CPU",
        &[("func.py", "import onnxruntime as ort\nP = [('TensorrtExecutionProvider', {'trt_fp16_enable': True}), 'CPUExecutionProvider']\ns = ort.InferenceSession('m.onnx', providers=P)\n")],
        CpuPreferred,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "set_providers with CUDA only",
        &[("func.py", "import onnxruntime as ort\ns = ort.InferenceSession('m.onnx')\ns.set_providers(['CUDAExecutionProvider'])\n")],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
    case(
        "CPU provider only is no device use",
        &[("func.py", "import onnxruntime as ort\ns = ort.InferenceSession('m.onnx', providers=['CPUExecutionProvider'])\n")],
        CpuPreferred,
        &[K::FrameworkImport],
        &[K::DeviceUse],
        &[],
    ),
    case(
        ".to('cuda') on the function's own class, nothing GPU-capable imported",
        &[("func.py", "class Job:\n    def to(self, queue):\n        self.queue = queue\n        return self\n\n    def cuda(self):\n        return self.to('cuda')\n\ndef handle(req):\n    return Job().to('cuda').queue\n")],
        Cpu,
        &[],
        &[K::DeviceUse],
        &[],
    ),
    case(
        ".to('cuda') with torch imported in another module still counts",
        &[
            ("func.py", "from .lib import make\n\ndef handle(req):\n    return make().to('cuda')\n"),
            ("lib.py", "import torch\n\ndef make():\n    return torch.zeros(2)\n"),
        ],
        Gpu,
        &[K::DeviceUse],
        &[],
        &[],
    ),
];

#[test]
fn evidence_is_right() {
    check("evidence", EVIDENCE);
}

// 7. Entry points -------------------------------------------------------------------------------

const ENTRIES: &[Case] = &[
    case(
        "lambda_function.py is the entry; a GPU benchmark beside it is not counted",
        &[
            ("lambda_function.py", "import json\n\ndef lambda_handler(event, context):\n    return {'statusCode': 200, 'body': json.dumps(event)}\n"),
            ("bench_gpu.py", "import torch\nx = torch.rand(4096, 4096).cuda()\n"),
        ],
        Cpu,
        &[K::IgnoredFile],
        &[K::DeviceUse],
        &["entry: lambda_function.py"],
    ),
    case(
        "BentoML service.py",
        &[
            ("service.py", "import bentoml\nfrom runner import infer\n\n@bentoml.service\nclass S:\n    @bentoml.api\n    def go(self, x: list) -> list:\n        return infer(x)\n"),
            ("runner.py", "import torch\n\ndef infer(x):\n    return torch.as_tensor(x).tolist()\n"),
            ("train.py", "import torch\nm = torch.nn.Linear(2, 2).cuda()\n"),
        ],
        CpuPreferred,
        &[K::IgnoredFile, K::FrameworkImport],
        &[K::DeviceUse],
        &["entry: service.py"],
    ),
    case(
        "Truss model/model.py with a package beside it",
        &[
            ("model/__init__.py", ""),
            ("model/model.py", "from .helpers import device\nimport torch\n\nclass Model:\n    def load(self):\n        self.m = torch.nn.Linear(2, 2).to(device())\n"),
            ("model/helpers.py", "import torch\n\ndef device():\n    return 'cuda' if torch.cuda.is_available() else 'cpu'\n"),
            ("scripts/export.py", "import torch\ntorch.zeros(1).cuda()\n"),
        ],
        CpuPreferred,
        &[K::DeviceUse, K::IgnoredFile],
        &[],
        &["entry: model/model.py"],
    ),
    case(
        "model.py imported by the handler is no entry: handler.py is",
        &[
            ("handler.py", "from model import Net\nimport torch\n\ndef handle(x):\n    return Net()(torch.as_tensor(x))\n"),
            ("model.py", "import torch\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n"),
        ],
        CpuPreferred,
        &[K::FrameworkImport],
        &[K::IgnoredFile],
        &["entry: handler.py"],
    ),
    case(
        "no entry name: the file that defines predict, under model/",
        &[
            ("model/infer.py", "import torch\nfrom .net import build\n\nnet = build()\n\ndef predict(x):\n    return net(torch.as_tensor(x))\n"),
            ("model/net.py", "import torch\n\ndef build():\n    return torch.nn.Linear(2, 2)\n"),
            ("model/benchmark.py", "import torch\nfrom .net import build\nbuild().cuda()\n"),
        ],
        CpuPreferred,
        &[K::IgnoredFile],
        &[K::DeviceUse],
        &["entry: model/infer.py"],
    ),
    case(
        "Triton 1/model.py",
        &[
            ("1/model.py", "import numpy as np\n\nclass TritonPythonModel:\n    def initialize(self, args):\n        self.k = 2\n\n    def execute(self, requests):\n        return [np.asarray(r) * self.k for r in requests]\n"),
            ("tools/convert.py", "import tensorrt\n"),
        ],
        Cpu,
        &[K::IgnoredFile],
        &[K::GpuLibrary],
        &["entry: 1/model.py"],
    ),
    case(
        "nothing identifies an entry: every file counts",
        &[
            ("a.py", "import torch\nx = torch.zeros(2)\n"),
            ("b.py", "import cupy\n"),
        ],
        Gpu,
        &[K::GpuLibrary],
        &[K::IgnoredFile],
        &[],
    ),
];

#[test]
fn entries_are_found_like_the_frameworks_do() {
    check("entries", ENTRIES);
}

#[test]
fn chains_of_bindings_and_references_stay_bounded() {
    // `a = b` / `b = a`, eight times each, passed to a process: the command evaluator must not
    // fan out (8^16 paths); mutually recursive helpers under a guard must settle.
    let mut src = String::from("import subprocess\nimport torch\n");
    for _ in 0..8 {
        src.push_str("a = b\nb = a\n");
    }
    src.push_str("subprocess.run(a)\n\ndef f(t):\n    return g(t.cuda())\n\ndef g(t):\n    return f(t)\n\ndef handle(t):\n    if torch.cuda.is_available():\n        return f(t)\n    return t\n");
    let started = std::time::Instant::now();
    let c = run(vec![SourceFile::new("func.py", src.into_bytes())]);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    assert_eq!(c.mode, CpuPreferred, "{}", c.rationale);
}
