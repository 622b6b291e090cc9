// The compatibility APIs (A1111, OpenAI) answer one HTTP call with the finished images, where the
// native API hands out a job id. They still go through the one queue, and a client that goes away
// must not leave work behind: A1111 clients such as SillyTavern give up and call interrupt, and the
// OpenAI client times out and submits again, so a job whose caller disconnected is cancelled.
import DeciDiffusion
import Foundation
import NIOCore

enum SynchronousJob {
    /// Submits `spec`, waits for it to finish and returns the final state; cancels the job when the
    /// client's connection closes first. `submitted` sees the job as soon as it is queued (so the
    /// caller can make it the target of interrupt / skip / progress).
    static func run(_ spec: JobSpec, service: any JobQueue, context: DeciRequestContext,
                    submitted: (JobSnapshot) -> Void = { _ in }) async throws(ServiceError) -> JobSnapshot {
        let (job, watcher) = try start(spec, service: service, context: context)
        defer { watcher.stop() }
        submitted(job)
        return try await service.waitUntilFinished(job.id)
    }

    /// Submits `spec` and ties the job to the client's connection (cancelled when the client goes
    /// away), for callers that follow the job's events themselves (a streamed answer) instead of
    /// waiting; they stop the watcher once the answer is complete.
    static func start(_ spec: JobSpec, service: any JobQueue,
                      context: DeciRequestContext) throws(ServiceError) -> (job: JobSnapshot, watcher: ClientDisconnectWatcher) {
        let job = try service.submit(spec)
        let id = job.id
        // Cancelling a job that has finished meanwhile is a no-op.
        let watcher = ClientDisconnectWatcher(channel: context.channel) { _ = try? service.cancel(id) }
        return (job, watcher)
    }
}
