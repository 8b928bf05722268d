//! One long-lived thread with the classifier's stack, shared by the inputs of a fuzzing run
//! (a thread per input would cost more than the classification).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

use gaia_classifier::{classify, Classification, Error, Limits, SourceFile, REQUIRED_STACK_BYTES};

type Job = (Vec<SourceFile>, Sender<Result<Classification, Error>>);

fn worker() -> &'static Mutex<Sender<Job>> {
    static WORKER: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = channel();
        std::thread::Builder::new()
            .name("classifier".into())
            .stack_size(REQUIRED_STACK_BYTES)
            .spawn(move || {
                for (files, reply) in rx {
                    let _ = reply.send(classify(&files, &Limits::default()));
                }
            })
            .expect("the classifier thread");
        Mutex::new(tx)
    })
}

/// Classifies on the classifier thread; a panic there aborts the run (the input is kept).
pub fn run(files: Vec<SourceFile>) -> Result<Classification, Error> {
    let (reply, answer) = channel();
    worker()
        .lock()
        .expect("the worker's sender")
        .send((files, reply))
        .expect("the classifier thread is gone");
    answer.recv().expect("the classifier thread died")
}
