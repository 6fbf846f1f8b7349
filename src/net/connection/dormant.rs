//! A future that a busy task polls only when it asked to be polled.
//!
//! The read loop selects over its socket and two cancellation futures at every wake-up, and a
//! wake-up almost always comes from the socket. Each poll of a `CancellationToken`'s future
//! takes the token's lock and its `Notify`'s lock, on memory that a thousand quiet connections
//! keep cold: about 3 % of the recorder's CPU in a profile of 1,000 streams at 20 msg/s.
//! [`Dormant`] polls the future it wraps only when that future's own waker fired since the last
//! poll (or when the task's waker changed, so the registration stays right), and otherwise
//! answers `Pending` at the cost of one atomic load.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// Wraps `F`, polling it only after its waker fired (see the module doc).
pub(super) struct Dormant<F> {
    fut: Pin<Box<F>>,
    signal: Arc<Signal>,
    /// What `fut` is polled with: wakes `signal`.
    inner: Waker,
    /// The task's waker that `signal` wakes, as last registered.
    task: Option<Waker>,
}

/// Set by the wrapped future's waker; wakes the task.
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.task.wake();
    }
}

impl<F: Future> Dormant<F> {
    pub(super) fn new(fut: F) -> Self {
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(false),
            task: AtomicWaker::new(),
        });
        Self {
            fut: Box::pin(fut),
            inner: Waker::from(signal.clone()),
            signal,
            task: None,
        }
    }
}

impl<F: Future> Future for Dormant<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let same_task = this.task.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if !same_task {
            this.signal.task.register(cx.waker());
            this.task = Some(cx.waker().clone());
        } else if !this.signal.woken.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        // Cleared before the poll: a wake-up during or after it is seen at the next poll.
        this.signal.woken.store(false, Ordering::SeqCst);
        this.fut
            .as_mut()
            .poll(&mut Context::from_waker(&this.inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready once `ready` is set, waking the waker it last saw when told.
    struct Probe {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<std::sync::Mutex<Option<Waker>>>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// A task waker that counts its wake-ups.
    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A probe wrapped in [`Dormant`], with its poll count, readiness and last waker.
    #[allow(clippy::type_complexity)]
    fn probe() -> (
        Pin<Box<Dormant<Probe>>>,
        Arc<AtomicUsize>,
        Arc<AtomicBool>,
        Arc<std::sync::Mutex<Option<Waker>>>,
    ) {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(None::<Waker>));
        let d = Box::pin(Dormant::new(Probe {
            polls: polls.clone(),
            ready: ready.clone(),
            waker: seen.clone(),
        }));
        (d, polls, ready, seen)
    }

    #[test]
    fn the_wrapped_future_is_polled_only_after_its_own_waker_fired() {
        let (mut d, polls, ready, seen) = probe();
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let task = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&task);
        assert!(d.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1, "the first poll reaches it");
        // The task wakes for other reasons: the wrapped future is not polled again.
        for _ in 0..10 {
            assert!(d.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // Its own waker fires: the task is woken and the next poll reaches it.
        ready.store(true, Ordering::SeqCst);
        seen.lock().unwrap().take().unwrap().wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "the task was woken");
        assert!(d.as_mut().poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_new_task_waker_is_registered_and_polls_through() {
        let (mut d, polls, _, seen) = probe();
        let first = Arc::new(Counter(AtomicUsize::new(0)));
        let second = Arc::new(Counter(AtomicUsize::new(0)));
        let w1 = Waker::from(first.clone());
        let w2 = Waker::from(second.clone());
        assert!(d.as_mut().poll(&mut Context::from_waker(&w1)).is_pending());
        assert!(d.as_mut().poll(&mut Context::from_waker(&w2)).is_pending());
        assert_eq!(
            polls.load(Ordering::SeqCst),
            2,
            "a new task waker polls through"
        );
        seen.lock().unwrap().take().unwrap().wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the latest task waker is woken"
        );
    }

    /// With tokio: a cancellation while the task waits elsewhere ends the select at once.
    #[tokio::test]
    async fn a_cancelled_token_wakes_a_task_waiting_elsewhere() {
        let token = tokio_util::sync::CancellationToken::new();
        let mut stop = Dormant::new(token.clone().cancelled_owned());
        let (_tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let cancel = {
            let token = token.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                token.cancel();
            })
        };
        // A lost wake-up would hang here; the timeout only turns that into a failure.
        let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            tokio::select! {
                biased;
                () = &mut stop => true,
                _ = rx.recv() => false,
            }
        })
        .await;
        assert_eq!(waited, Ok(true), "the cancellation woke the task");
        cancel.await.unwrap();
    }
}
