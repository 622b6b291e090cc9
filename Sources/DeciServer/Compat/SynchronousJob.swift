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
    static func run(_ spec: JobSpec, service: GenerationService, context: DeciRequestContext,
                    submitted: (JobSnapshot) -> Void = { _ in }) async throws(ServiceError) -> JobSnapshot {
        let job = try start(spec, service: service, context: context)
        submitted(job)
        return try await service.waitUntilFinished(job.id)
    }

    /// Submits `spec` and ties the job to the client's connection (cancelled when it closes), for
    /// callers that follow the job's events themselves (a streamed answer) instead of waiting.
    static func start(_ spec: JobSpec, service: GenerationService, context: DeciRequestContext) throws(ServiceError) -> JobSnapshot {
        let job = try service.submit(spec)
        let id = job.id
        // Fires on close; for a keep-alive connection that outlives the job, cancelling a finished
        // job is a no-op.
        context.channel.closeFuture.whenComplete { _ in _ = try? service.cancel(id) }
        return job
    }
}
