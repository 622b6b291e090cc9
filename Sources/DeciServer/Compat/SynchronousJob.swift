// The compatibility APIs (A1111, OpenAI) answer one HTTP call with the finished images, where the
// native API hands out a job id. They still go through the one queue, and a client that goes away
// must not leave work behind: A1111 clients such as SillyTavern give up and call interrupt, and the
// OpenAI client times out and submits again, so a job whose caller disconnected is cancelled.
import DeciDiffusion
import Foundation
import NIOCore

enum SynchronousJob {
    /// Submits `spec`, waits for it to finish and returns the final state; cancels the job when the
    /// client's connection goes away first. `submitted` sees the job as soon as it is queued.
    static func run(_ spec: JobSpec, service: GenerationService, context: DeciRequestContext,
                    submitted: (JobSnapshot) -> Void = { _ in }) async throws(ServiceError) -> JobSnapshot {
        let job = try service.submit(spec)
        submitted(job)
        let id = job.id
        // For a keep-alive connection that outlives the job, cancelling a finished job is a no-op.
        onDisconnect(context) { _ = try? service.cancel(id) }
        return try await service.waitUntilFinished(id)
    }

    /// Calls `gone` once when the client closes its side of the connection. The server allows
    /// half-closure (a client may shut down writing and still read the answer), so the channel
    /// itself stays open while a handler runs: watch for the end of input as well as for the close.
    static func onDisconnect(_ context: DeciRequestContext, _ gone: @escaping @Sendable () -> Void) {
        let channel = context.channel
        let once = Once(gone)
        channel.closeFuture.whenComplete { _ in once.fire() }
        channel.eventLoop.execute {
            try? channel.pipeline.syncOperations.addHandler(PeerGoneHandler(once), position: .first)
        }
    }
}

/// Runs its action at most once, from whichever event comes first.
final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var action: (@Sendable () -> Void)?
    init(_ action: @escaping @Sendable () -> Void) { self.action = action }
    func fire() {
        let a: (@Sendable () -> Void)? = lock.withLock { defer { action = nil }; return action }
        a?()
    }
}

/// Sees the client's end of input or the connection going inactive, passing everything on.
final class PeerGoneHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let once: Once
    init(_ once: Once) { self.once = once }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { once.fire() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        once.fire()
        context.fireChannelInactive()
    }
}
