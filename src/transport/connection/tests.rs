//! A connection over an in-memory stream, under paused time: ticks, tick timeouts, a
//! reader held up by its handler, frame caps, a peer that stops reading.

use super::*;
use crate::proto::term::{Atom, Holes, Pid};
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

#[derive(Default)]
struct Recorder {
    /// How long each message holds the reader up (a full mailbox).
    hold: Duration,
    messages: Mutex<Vec<Control>>,
    bad: Mutex<Vec<MessageError>>,
    /// The answer to a bad message.
    on_bad: OnBadMessage,
    down: Mutex<Option<DisconnectReason>>,
}

impl ConnectionHandler for Recorder {
    async fn on_message(&self, _link: &Connection, message: Control) {
        tokio::time::sleep(self.hold).await;
        self.messages.lock().unwrap().push(message);
    }
    fn on_bad_message(
        &self,
        _link: &Connection,
        error: &MessageError,
        _bytes: &Bytes,
    ) -> OnBadMessage {
        self.bad.lock().unwrap().push(error.clone());
        self.on_bad
    }
    fn on_down(&self, _link: &Connection, reason: DisconnectReason) {
        *self.down.lock().unwrap() = Some(reason);
    }
}

fn info() -> ConnectionInfo {
    ConnectionInfo {
        peer: NodeName::parse("peer@10.0.0.1").unwrap(),
        addr: "10.0.0.1:1".parse().unwrap(),
        flags: DistFlags::BEAMLINK_DEFAULT,
        peer_flags: DistFlags::BEAMLINK_DEFAULT,
        peer_creation: 1,
        id: 1,
        tls: None,
    }
}

/// A connection over one end of an in-memory stream of `buffer` bytes; the peer gets the
/// other end.
struct Rig {
    link: Connection,
    recorder: Arc<Recorder>,
    tracker: TaskTracker,
    peer: DuplexStream,
}

impl Rig {
    fn start(config: ConnectionConfig, recorder: Recorder, buffer: usize) -> Rig {
        let (ours, peer) = tokio::io::duplex(buffer);
        let (reader, writer) = tokio::io::split(ours);
        let recorder = Arc::new(recorder);
        let tracker = TaskTracker::new();
        let parts = ConnectionParts {
            reader,
            writer,
            leftover: BytesMut::new(),
            info: info(),
            config,
            handler: recorder.clone(),
        };
        let link = spawn(parts, &tracker, &CancellationToken::new());
        Rig {
            link,
            recorder,
            tracker,
            peer,
        }
    }

    /// Waits for both halves to stop; the reason the handler got.
    async fn stopped(self) -> Option<DisconnectReason> {
        self.link.closed().await;
        self.tracker.close();
        self.tracker.wait().await;
        self.recorder.down.lock().unwrap().clone()
    }
}

fn ticking(net_ticktime_s: u64) -> ConnectionConfig {
    ConnectionConfig {
        net_ticktime: Duration::from_secs(net_ticktime_s),
        ..ConnectionConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_declared_down_by_the_beam_rule() {
    let started = tokio::time::Instant::now();
    let rig = Rig::start(ticking(4), Recorder::default(), 1 << 16);
    let (down, elapsed) = {
        let reason = rig.stopped().await;
        (reason, started.elapsed())
    };
    assert_eq!(down, Some(DisconnectReason::TickTimeout));
    // (I-1)/I*T ..= (I+1)/I*T with T = 4 s, I = 4.
    assert!(elapsed >= Duration::from_secs(3) && elapsed <= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn an_idle_link_ticks() {
    let mut rig = Rig::start(ticking(4), Recorder::default(), 1 << 16);
    // The peer ticks too, every second, for 30 s: the link stays up.
    let mut got = [0u8; 4];
    for _ in 0..30 {
        rig.peer.write_all(&[0, 0, 0, 0]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), rig.peer.read_exact(&mut got))
            .await
            .expect("we tick at least every net_ticktime/4")
            .unwrap();
        assert_eq!(got, [0, 0, 0, 0]);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(rig.link.is_up());
    rig.link.close();
    assert_eq!(rig.stopped().await, Some(DisconnectReason::Local));
}

#[tokio::test(start_paused = true)]
async fn a_reader_held_up_by_its_handler_is_not_a_silent_peer() {
    let recorder = Recorder {
        hold: Duration::from_secs(20),
        ..Recorder::default()
    };
    let mut rig = Rig::start(ticking(4), recorder, 1 << 16);
    let pid = |id| Pid {
        node: Atom::new("peer@10.0.0.1"),
        id,
        serial: 0,
        creation: 1,
    };
    let message = Control::Link {
        from: pid(1),
        to: pid(2),
    };
    let mut frame = BytesMut::new();
    frame::encode_message(&message, DistFlags::BEAMLINK_DEFAULT, &mut frame).unwrap();
    rig.peer.write_all(&frame).await.unwrap();
    // The handler holds the reader for five net_ticktimes while the peer's ticks wait in
    // the stream; then the reader takes them and the link is still up.
    for _ in 0..30 {
        rig.peer.write_all(&[0, 0, 0, 0]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(rig.link.is_up());
    assert_eq!(*rig.recorder.messages.lock().unwrap(), vec![message]);
    rig.link.close();
    assert_eq!(rig.stopped().await, Some(DisconnectReason::Local));
}

#[tokio::test(start_paused = true)]
async fn oversized_frames_close_the_link_and_bad_messages_do_not() {
    let config = ConnectionConfig {
        max_frame: 1024,
        ..ConnectionConfig::default()
    };
    let mut rig = Rig::start(config, Recorder::default(), 1 << 16);
    // A message with an unknown header byte: reported, link stays up. With time paused,
    // the sleep ends only once every task is idle, so the reader has taken the message.
    rig.peer.write_all(&[0, 0, 0, 2, 1, 2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rig.link.is_up());
    assert_eq!(rig.recorder.bad.lock().unwrap().len(), 1);
    rig.peer.write_all(&[0xFF, 0xFF, 0xFF, 0xFF]).await.unwrap();
    assert!(matches!(
        rig.stopped().await,
        Some(DisconnectReason::Frame(_))
    ));
}

/// With [`OnBadMessage::DropLink`], the first message that does not decode ends the link
/// with the decoding error as its reason, and nothing after it is read.
#[tokio::test(start_paused = true)]
async fn a_bad_message_closes_the_link_when_the_handler_says_so() {
    let recorder = Recorder {
        on_bad: OnBadMessage::DropLink,
        ..Recorder::default()
    };
    let mut rig = Rig::start(ConnectionConfig::default(), recorder, 1 << 16);
    // An unknown header byte, then a tick that would otherwise be read.
    rig.peer
        .write_all(&[0, 0, 0, 2, 1, 2, 0, 0, 0, 0])
        .await
        .unwrap();
    let recorder = rig.recorder.clone();
    assert_eq!(
        rig.stopped().await,
        Some(DisconnectReason::BadMessage(MessageError::UnknownHeader {
            byte: 1
        }))
    );
    assert_eq!(recorder.bad.lock().unwrap().len(), 1);
    assert_eq!(
        DisconnectReason::BadMessage(MessageError::TrailingBytes).label(),
        "bad_message"
    );
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_fills_the_queue_then_the_link_drops() {
    let config = ConnectionConfig {
        send_queue_bytes: 64 * 1024,
        ..ticking(4)
    };
    let rig = Rig::start(config, Recorder::default(), 1024);
    let packet = Bytes::from(vec![0u8; 8 * 1024]);
    let mut queued = 0;
    loop {
        let mut write =
            |out: &mut BytesMut, _: DistFlags, _: Option<&mut AtomCacheOut>, _: &mut Holes| {
                out.extend_from_slice(&packet);
                Ok(())
            };
        match rig.link.try_queue(&mut write) {
            Some(Ok(())) => queued += 1,
            Some(Err(e)) => panic!("{e}"),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    assert!(queued >= 8, "queue accepted {queued} packets");
    // A waiting sender is released with an error when the link gives up.
    let waiting = rig.link.send_packet(packet.clone());
    assert_eq!(waiting.await, Err(SendError::LinkClosed));
    assert_eq!(rig.stopped().await, Some(DisconnectReason::SendStalled));
}

#[tokio::test(start_paused = true)]
async fn what_was_queued_before_we_close_reaches_the_peer() {
    let mut rig = Rig::start(ticking(60), Recorder::default(), 64 * 1024);
    let packet = Bytes::from(vec![7u8; 1000]);
    for _ in 0..20 {
        let mut write =
            |out: &mut BytesMut, _: DistFlags, _: Option<&mut AtomCacheOut>, _: &mut Holes| {
                out.extend_from_slice(&packet);
                Ok(())
            };
        assert!(matches!(rig.link.try_queue(&mut write), Some(Ok(()))));
    }
    // Closed before the writer ran: without the last flush the peer gets nothing.
    rig.link.close();
    let mut got = Vec::new();
    rig.peer.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 20 * 1000);
    assert!(got.iter().all(|&b| b == 7));
    assert_eq!(rig.stopped().await, Some(DisconnectReason::Local));
}
