//! GPU use outside the Python API: the commands a function starts (`subprocess.run([...])`,
//! `os.system("...")`). Their argument lists and command strings, as far as the evaluator knows
//! them, are read for the forms of [`rules::gpu_command`]: ffmpeg with NVENC/NVDEC or
//! `-hwaccel cuda`, `--device cuda`, `--cuda`, and `nvidia-smi` (a GPU check).

use super::rules::{self, GpuCommand};
use super::source::shorten;
use super::walk::{CallSite, Hit};
use gaia_contract::FindingKind;

/// Findings of one call, when it starts a process.
pub fn check_call(site: &CallSite<'_, '_>) -> Vec<Hit> {
    let Some(q) = site.qual.as_deref() else {
        return Vec::new();
    };
    if !rules::PROCESS_CALLS.contains(&q) {
        return Vec::new();
    }
    let call = site.call;
    // `create_subprocess_exec("ffmpeg", "-i", ...)` and `execvp(file, args)` spread the command
    // over their arguments; the others take it first (or as `args=`).
    let spread = matches!(q, "asyncio.create_subprocess_exec");
    let mut alternatives: Vec<(Vec<String>, bool)> = Vec::new();
    if spread {
        let mut words = Vec::new();
        let mut guarded = false;
        for a in call.arguments.args.iter().take(64) {
            for (w, g) in site.eval.command_words(site.at, a) {
                words.extend(w);
                guarded |= g;
            }
        }
        alternatives.push((words, guarded));
    } else {
        let arg = call
            .arguments
            .args
            .get(usize::from(matches!(
                q,
                "os.execvp" | "os.execv" | "os.spawnvp"
            )))
            .or_else(|| {
                call.arguments
                    .keywords
                    .iter()
                    .find(|k| matches!(k.arg.as_deref(), Some("args" | "command" | "cmd")))
                    .map(|k| &k.value)
            });
        if let Some(arg) = arg {
            alternatives = site.eval.command_words(site.at, arg);
        }
    }
    let mut uses: Option<(String, bool)> = None;
    let mut check: Option<String> = None;
    for (words, guarded) in &alternatives {
        match rules::gpu_command(words) {
            Some((GpuCommand::Uses, word)) => {
                let program = words.first().map_or("", String::as_str);
                let detail = format!("{q}: {} ... {word}", shorten(program));
                uses = Some(match uses {
                    Some((d, g)) => (d, g && *guarded),
                    None => (detail, *guarded),
                });
            }
            Some((GpuCommand::Checks, word)) => check = Some(format!("{q}: {word}")),
            None => {}
        }
    }
    let mut hits = Vec::new();
    if let Some((detail, guarded)) = uses {
        hits.push(Hit::new(FindingKind::DeviceUse, detail).guarded(guarded));
    } else if let Some(detail) = check {
        hits.push(Hit::new(FindingKind::AvailabilityCheck, detail));
    }
    hits
}
