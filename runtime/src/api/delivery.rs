//! A `wait_for_signal_done` answer's response body, holding the answer until the connection
//! took it: a response that is never written (its client went away while the answer was on
//! its way) gives the answer back to the engine, so the signal is offered again.
//!
//! What the server can know is that the connection asked for the body's end after taking its
//! bytes (the body has no length, so it is polled to its end): the bytes were handed to the
//! connection. A connection that breaks after that, with the bytes in its buffer or in the
//! kernel, is not seen here; the client's retry with the same request id gets the answer from
//! the replay cache then.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::engine::SignalDelivery;

/// The body: its bytes once, then its end, which marks the answer delivered.
pub(crate) struct DeliveryBody {
    bytes: Option<Bytes>,
    delivery: Option<SignalDelivery>,
}

impl DeliveryBody {
    /// `bytes`, delivering `delivery` once they were taken.
    pub(crate) fn new(bytes: Vec<u8>, delivery: SignalDelivery) -> Self {
        DeliveryBody {
            bytes: Some(Bytes::from(bytes)),
            delivery: Some(delivery),
        }
    }
}

impl Body for DeliveryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(bytes) = this.bytes.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        // Asked for more after its bytes: the connection has them.
        if let Some(delivery) = this.delivery.take() {
            let _ = delivery.delivered();
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        // Never ends before it is polled to its end: that poll is the delivery.
        false
    }

    fn size_hint(&self) -> SizeHint {
        // No length: the connection polls past the bytes.
        SizeHint::default()
    }
}
