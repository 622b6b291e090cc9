// Noticing that a client went away while its synchronous request is still being worked on.
// Hummingbird's HTTP/1 channels allow remote half-closure, so a client that closes its socket is
// only an `inputClosed` event on the server's side: the channel itself (and its closeFuture) stays
// open until the server writes its answer, which for a long generation is far too late. A client
// waiting for an HTTP answer never half-closes on purpose, so end of input, like the channel going
// inactive, means it is gone.
import NIOCore

/// Watches one connection for the client going away, calling `onGone` once. Remove it with
/// ``stop()`` when the request is answered, so handlers do not pile up on a keep-alive connection.
final class ClientDisconnectWatcher: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny

    // Touched on the channel's event loop only.
    private var fired = false
    private let onGone: @Sendable () -> Void
    private let channel: any Channel

    /// Starts watching `channel` (added at the front of the pipeline, so it sees the socket's
    /// events before the HTTP handlers).
    init(channel: any Channel, onGone: @escaping @Sendable () -> Void) {
        self.channel = channel
        self.onGone = onGone
        channel.pipeline.addHandler(self, position: .first).whenFailure { _ in
            // The channel is already closing: the client is gone (or the server is stopping).
            onGone()
        }
    }

    func stop() {
        channel.pipeline.removeHandler(self, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { fire() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fire()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    private func fire() {
        guard !fired else { return }
        fired = true
        onGone()
    }
}
