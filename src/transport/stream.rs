//! The byte stream a distribution connection runs over, from the first handshake byte to the
//! last tick: [`DistStream`], and its two halves once the connection runs ([`DistReader`],
//! [`DistWriter`]).
//!
//! Two carriers: plain TCP (`inet_tcp_dist`) and TLS (`inet_tls_dist`), which runs the same
//! handshake (with 4-byte framing, [`crate::proto::handshake::Framing`]) inside a TLS
//! session. The handshake ([`super::handshake`]), the node ([`crate::node::Node::adopt`]) and
//! the connection ([`super::connection`]) see only these types, and a new carrier touches
//! this file, the [`super::listener`] and the [`super::dialler`].

use crate::tls::TlsStream;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A connected stream that carries the distribution protocol.
#[derive(Debug)]
#[non_exhaustive]
pub enum DistStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, the TLS handshake done ([`crate::tls::stream`]).
    Tls(Box<TlsStream>),
}

/// The reading half of a [`DistStream`].
#[derive(Debug)]
#[non_exhaustive]
pub enum DistReader {
    /// Plain TCP.
    Plain(OwnedReadHalf),
    /// TLS: one session serves both directions, so the halves share it behind tokio's lock.
    Tls(ReadHalf<Box<TlsStream>>),
}

/// The writing half of a [`DistStream`].
#[derive(Debug)]
#[non_exhaustive]
pub enum DistWriter {
    /// Plain TCP.
    Plain(OwnedWriteHalf),
    /// TLS.
    Tls(WriteHalf<Box<TlsStream>>),
}

impl DistStream {
    /// Wraps a connected TCP stream. Nagle is turned off: the BEAM sets `nodelay` on
    /// distribution sockets too (`inet_tcp_dist`), and ticks and small replies must not wait.
    pub fn plain(stream: TcpStream) -> DistStream {
        let _ = stream.set_nodelay(true);
        DistStream::Plain(stream)
    }

    /// Wraps a TLS stream whose TLS handshake is done.
    pub fn tls(stream: TlsStream) -> DistStream {
        DistStream::Tls(Box::new(stream))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            DistStream::Plain(s) => s.peer_addr(),
            DistStream::Tls(s) => s.get_ref().0.peer_addr(),
        }
    }

    /// How the handshake messages are framed on this stream: 2-byte lengths on plain TCP,
    /// 4-byte inside TLS (`inet_tls_dist` runs `dist_util` with `{packet, 4}`).
    pub fn framing(&self) -> crate::proto::handshake::Framing {
        match self {
            DistStream::Plain(_) => crate::proto::handshake::Framing::Plain,
            DistStream::Tls(_) => crate::proto::handshake::Framing::Tls,
        }
    }

    /// What the TLS session agreed on; `None` on plain TCP.
    pub fn tls_session(&self) -> Option<crate::tls::TlsSession> {
        match self {
            DistStream::Plain(_) => None,
            DistStream::Tls(s) => Some(crate::tls::TlsSession::of(s)),
        }
    }

    /// Splits the stream so that the connection's reader and writer run as separate tasks.
    /// Plain TCP splits without a lock.
    pub fn into_split(self) -> (DistReader, DistWriter) {
        match self {
            DistStream::Plain(s) => {
                let (r, w) = s.into_split();
                (DistReader::Plain(r), DistWriter::Plain(w))
            }
            DistStream::Tls(s) => {
                let (r, w) = tokio::io::split(s);
                (DistReader::Tls(r), DistWriter::Tls(w))
            }
        }
    }
}

impl From<TcpStream> for DistStream {
    fn from(stream: TcpStream) -> DistStream {
        DistStream::plain(stream)
    }
}

/// Forwards `AsyncRead` to the stream inside each case of the enum.
macro_rules! forward_read {
    ($ty:ident { $($case:ident),+ }) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$case(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }
    };
}

/// Forwards `AsyncWrite` to the stream inside each case of the enum; vectored writes stay
/// vectored (the connection's writer hands large binaries over without copying them).
macro_rules! forward_write {
    ($ty:ident { $($case:ident),+ }) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($ty::$case(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($ty::$case(s) => Pin::new(s).poll_write_vectored(cx, bufs),)+
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $($ty::$case(s) => s.is_write_vectored(),)+
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$case(s) => Pin::new(s).poll_flush(cx),)+
                }
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$case(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}

forward_read!(DistStream { Plain, Tls });
forward_write!(DistStream { Plain, Tls });
forward_read!(DistReader { Plain, Tls });
forward_write!(DistWriter { Plain, Tls });

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn the_halves_carry_bytes_both_ways() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (dialled, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let ours = DistStream::plain(dialled.unwrap());
        assert_eq!(ours.peer_addr().unwrap(), addr);
        let mut theirs = DistStream::plain(accepted.unwrap().0);
        let (mut r, mut w) = ours.into_split();
        let parts = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cd")];
        let n = w.write_vectored(&parts).await.unwrap();
        w.write_all(&b"abcd"[n..]).await.unwrap();
        let mut got = [0u8; 4];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcd");
        theirs.write_all(b"xy").await.unwrap();
        let mut got = [0u8; 2];
        r.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"xy");
        w.shutdown().await.unwrap();
        assert_eq!(theirs.read(&mut got).await.unwrap(), 0);
    }
}
