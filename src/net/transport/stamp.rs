//! Kernel receive timestamps (`ts_source = "kernel"`): the TCP socket under TLS and WebSocket
//! framing, read with `recvmsg` so that each read brings the time the kernel received the data
//! it returns.
//!
//! With `SO_TIMESTAMPING` and `SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE`, Linux
//! stamps every incoming packet with `CLOCK_REALTIME` when the network stack receives it, before
//! any process is scheduled, and a TCP `recvmsg` returns the stamp of the last packet whose data
//! it hands out (`SCM_TIMESTAMPING`, first of its three `timespec`s; Linux
//! Documentation/networking/timestamping.rst, "SO_TIMESTAMPING" and its TCP notes). [`Tcp`]
//! keeps the latest stamp in a shared cell that the connection reads when it timestamps a frame:
//! the time the TCP data that completed the frame arrived, and with TLS the arrival of the
//! encrypted bytes that carried it. One stamp per read, the newest data's (TCP also merges
//! queued segments under the newest one's stamp): frames whose data waited in the socket while
//! more came take the later time, so the stamps are exact only if the socket is read as soon as
//! data comes. That is why the runtime does not linger before it sleeps unless
//! `wake_coalesce` asks for it.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// The latest kernel receive time seen on a connection, in ns since the Unix epoch (0: none yet).
pub type Stamp = Arc<AtomicU64>;

/// What one `recvmsg` brought.
struct Received {
    /// Bytes read into the buffer.
    len: usize,
    /// The kernel's receive time of them (ns since the Unix epoch), if it gave one.
    stamp: Option<u64>,
}

/// A TCP stream that, once stamping is on, reads with `recvmsg` and keeps each read's stamp.
pub struct Tcp {
    stream: TcpStream,
    stamp: Option<Stamp>,
}

impl Tcp {
    /// `stream`, read plainly until [`Tcp::stamp_on`].
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            stamp: None,
        }
    }

    /// Turns kernel receive timestamps on, if the kernel agrees; the error says why it did not
    /// (the stream is then read plainly, and frames get read times).
    pub fn stamp_on(&mut self) -> io::Result<()> {
        let flags = (libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE) as i32;
        // SAFETY: a valid socket and a pointer to a local of the size given.
        let r = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPING_NEW,
                (&raw const flags).cast(),
                size_of::<i32>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        self.stamp = Some(Stamp::default());
        Ok(())
    }

    /// The cell the stamps go to, if stamping is on.
    pub fn stamp(&self) -> Option<Stamp> {
        self.stamp.clone()
    }

    /// One `recvmsg` into `buf`: the bytes read and the kernel's stamp of them, if it gave one.
    fn recv(&self, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<Received> {
        // Room for one SCM_TIMESTAMPING message (three 16-byte timespecs) and then some, aligned
        // for `cmsghdr`.
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: zeroed `msghdr` is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control) as _;
        // SAFETY: `msg` points at live buffers of the lengths given; the kernel writes at most
        // `iov_len` bytes into `buf` (uninitialised memory is fine to write into).
        let n = unsafe { libc::recvmsg(self.stream.as_raw_fd(), &raw mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut stamp = None;
        // SAFETY: the CMSG_* walk stays within `msg_controllen`, which the kernel set.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET
                    && (*c).cmsg_type == libc::SO_TIMESTAMPING_NEW
                {
                    // `struct scm_timestamping64`: three `__kernel_timespec`s; the software
                    // stamp is the first.
                    let ts = libc::CMSG_DATA(c).cast::<[i64; 2]>().read_unaligned();
                    if ts[0] > 0 {
                        stamp = Some(ts[0] as u64 * 1_000_000_000 + ts[1] as u64);
                    }
                }
                c = libc::CMSG_NXTHDR(&raw const msg, c);
            }
        }
        Ok(Received {
            len: n as usize,
            stamp,
        })
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(cell) = &this.stamp else {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        };
        loop {
            ready!(this.stream.poll_read_ready(cx))?;
            // SAFETY: `recv` only writes into the unfilled part; `assume_init` below covers
            // exactly the bytes it wrote.
            let unfilled = unsafe { buf.unfilled_mut() };
            let room = unfilled.len();
            // A read that leaves room in the buffer drained the socket: it is passed out as
            // `WouldBlock` so that tokio forgets the readiness (as its own `poll_read` does
            // after a short read), and the next poll waits for epoll instead of asking the
            // kernel again for an `EAGAIN`: one `recvmsg` per quiet message, not two.
            let mut drained = None;
            let read = this.stream.try_io(Interest::READABLE, || {
                let got = this.recv(unfilled)?;
                if got.len > 0 && got.len < room {
                    drained = Some(got);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(got)
            });
            let got = match (read, drained) {
                (_, Some(got)) | (Ok(got), None) => got,
                (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
                (Err(e), None) => return Poll::Ready(Err(e)),
            };
            let Received { len: n, stamp } = got;
            // SAFETY: the kernel initialised the first `n` bytes.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            // Bytes that came without a stamp (receive stamping is switched on for the
            // machine a moment after the first socket asks) get read times, not the stamp
            // of older data.
            if n > 0 {
                cell.store(stamp.unwrap_or(0), Relaxed);
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
