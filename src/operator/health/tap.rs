//! The watches' client, tapped: every 2xx answer and every body frame of one is reported
//! to the [`StreamBoard`] by request path. kube's watcher consumes bookmarks and resumes a
//! watch without an event, so only the wire shows that a quiet watch is alive (bookmarks
//! arrive about once a minute) or that a failing one is back.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http::Request;
use http_body::{Body, Frame, SizeHint};
use kube::{Client, client::Body as KubeBody};

use super::streams::StreamBoard;

/// `client` with its answers reported to `board`.
pub fn tapped(client: Client, board: StreamBoard) -> Client {
    let namespace = client.default_namespace().to_owned();
    let valid_until = *client.valid_until();
    let svc = tower::service_fn(move |req: Request<KubeBody>| {
        let (client, board) = (client.clone(), board.clone());
        async move {
            let path = req.uri().path().to_owned();
            let resp = client.send(req).await?;
            let ok = resp.status().is_success();
            if ok {
                board.touch(&path);
            }
            let tap = ok.then_some((board, path));
            Ok::<_, kube::Error>(resp.map(|body| Tapped { body, tap }))
        }
    });
    Client::new(svc, namespace).with_valid_until(valid_until)
}

/// A response body whose data frames are reported (for 2xx answers).
struct Tapped {
    body: KubeBody,
    tap: Option<(StreamBoard, String)>,
}

impl Body for Tapped {
    type Data = <KubeBody as Body>::Data;
    type Error = kube::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(f))), Some((board, path))) = (&polled, &self.tap)
            && f.is_data()
        {
            board.touch(path);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
