//! Plain HTTP for tests: a bare GET, one sample of a `/metrics` body, free loopback ports,
//! requests read off a stream, and a local receiver that records every request and
//! answers the statuses a test scripts.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::wait::{WAIT, wait_for};

/// A loopback address with a port free at the time of asking.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A bare HTTP/1.0 GET; returns the status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (code, body.to_owned())
}

/// The value of one sample (`name{labels}` exactly as exposed) in a `/metrics` body.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// One request as a test's server read it: its head (request line, headers) and body.
#[derive(Clone, Debug)]
pub struct Request {
    pub head: String,
    pub body: String,
}

impl Request {
    /// The request line: `METHOD TARGET VERSION`.
    pub fn line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    pub fn method(&self) -> &str {
        self.line().split(' ').next().unwrap_or("")
    }

    /// The request target as sent: a path, absolute-form to a proxy, host:port for CONNECT.
    pub fn target(&self) -> &str {
        self.line().split(' ').nth(1).unwrap_or("")
    }

    /// `METHOD TARGET`.
    pub fn call(&self) -> String {
        format!("{} {}", self.method(), self.target())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Requests as a server records them, in the order read.
pub type Requests = Arc<Mutex<Vec<Request>>>;

/// Reads one request (head, and a body of its `content-length`); `None` at the end of the
/// stream.
pub async fn read_request<S: AsyncRead + Unpin>(io: &mut S) -> Option<Request> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(io.read_u8().await.ok()?);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut req = Request {
        head,
        body: String::new(),
    };
    let len = req
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; len];
    io.read_exact(&mut body).await.ok()?;
    req.body = String::from_utf8_lossy(&body).into_owned();
    Some(req)
}

/// Waits until `requests` has one; returns the first.
pub async fn first_request(requests: &Requests, what: &str) -> Request {
    wait_for(what, WAIT, || async {
        requests
            .lock()
            .unwrap()
            .first()
            .cloned()
            .ok_or("nothing yet")
    })
    .await
}

/// How a receiver answers.
enum Answer {
    /// The next status of the script; the last one repeats.
    Scripted(Vec<u16>),
    /// A status chosen for each request.
    By(fn(&Request) -> u16),
}

/// A local HTTP server that records every request and answers each with the next scripted
/// status (the last one repeats) or the status its function picks; one request per
/// connection.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: Requests,
    answer: Arc<Mutex<Answer>>,
}

impl Receiver {
    /// On a free loopback port, answering `statuses` in turn.
    pub async fn start(statuses: &[u16]) -> Receiver {
        Receiver::on(Self::bind().await, statuses)
    }

    /// On `listener`, answering `statuses` in turn.
    pub fn on(listener: tokio::net::TcpListener, statuses: &[u16]) -> Receiver {
        Receiver::serve(listener, Answer::Scripted(statuses.to_vec()))
    }

    /// On a free loopback port, answering each request with `answer(request)`.
    pub async fn answering(answer: fn(&Request) -> u16) -> Receiver {
        Receiver::serve(Self::bind().await, Answer::By(answer))
    }

    async fn bind() -> tokio::net::TcpListener {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
    }

    fn serve(listener: tokio::net::TcpListener, answer: Answer) -> Receiver {
        let r = Receiver {
            addr: listener.local_addr().expect("addr"),
            requests: Requests::default(),
            answer: Arc::new(Mutex::new(answer)),
        };
        let rec = r.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let rec = rec.clone();
                tokio::spawn(async move {
                    let mut conn = tokio::io::BufReader::new(conn);
                    let Some(req) = read_request(&mut conn).await else {
                        return;
                    };
                    let status = rec.status_for(&req);
                    rec.requests.lock().unwrap().push(req);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        r
    }

    fn status_for(&self, req: &Request) -> u16 {
        match &mut *self.answer.lock().unwrap() {
            Answer::Scripted(s) if s.len() > 1 => s.remove(0),
            Answer::Scripted(s) => s[0],
            Answer::By(f) => f(req),
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// `METHOD TARGET` of every request so far.
    pub fn calls(&self) -> Vec<String> {
        self.all().iter().map(Request::call).collect()
    }

    /// Answers `statuses` in turn from now on.
    pub fn set(&self, statuses: &[u16]) {
        *self.answer.lock().unwrap() = Answer::Scripted(statuses.to_vec());
    }

    /// Waits until something was received; returns all of it.
    pub async fn received(&self, what: &str) -> Vec<Request> {
        wait_for(what, WAIT, || async {
            let all = self.all();
            if all.is_empty() {
                Err("nothing received")
            } else {
                Ok(all)
            }
        })
        .await
    }

    /// Waits until something was received; returns the first request.
    pub async fn first(&self, what: &str) -> Request {
        first_request(&self.requests, what).await
    }
}
