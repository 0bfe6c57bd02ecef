//! Threads that own SQLite connections, so blocking calls (fsync included) never run on
//! an async runtime's threads. A call is a closure sent to a thread; its answer comes back
//! on a one-shot channel any executor can await.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::{Result, StoreError};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One or more threads, each owning one connection, taking calls from one queue.
pub(super) struct Worker {
    queue: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Worker {
    /// Starts one thread per connection.
    pub(super) fn start(name: &str, connections: Vec<Connection>) -> Result<Self> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let mut threads = Vec::with_capacity(connections.len());
        for (n, mut conn) in connections.into_iter().enumerate() {
            let jobs = Arc::clone(&jobs);
            let thread = std::thread::Builder::new()
                .name(format!("strongroom-sqlite-{name}-{n}"))
                .spawn(move || loop {
                    let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = job else { break };
                    // A panicking call drops its answer channel (the caller gets an
                    // error); the thread and its connection stay in service.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(&mut conn);
                    }));
                })
                .map_err(|e| StoreError::Database(format!("cannot start a SQLite thread: {e}")))?;
            threads.push(thread);
        }
        Ok(Self {
            queue: Some(queue),
            threads,
        })
    }

    /// Runs `call` on one of the threads and awaits its answer.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = futures_channel::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = answer.send(call(conn));
        });
        self.queue
            .as_ref()
            .and_then(|queue| queue.send(job).ok())
            .ok_or_else(|| StoreError::Database("the SQLite worker has stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Defect("a SQLite call failed without an answer"))?
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the queue ends each thread after its current call; joining closes the
        // connections before the backend is gone (so the WAL is checkpointed on close).
        drop(self.queue.take());
        let current = std::thread::current().id();
        for thread in self.threads.drain(..) {
            if thread.thread().id() != current {
                let _ = thread.join();
            }
        }
    }
}
