// What every front end (the native job API, the A1111 and OpenAI routes) needs from a job queue.
// Two implementations: GenerationService, the embedded in-process queue with its own runner (the
// default), and the PostgreSQL-backed queue of DeciQueuePostgres, where many API nodes and workers
// on many machines share one database. The HTTP layer only sees this protocol.
//
// The calls are synchronous because the in-process queue answers each under one lock in
// microseconds; a database-backed implementation answers with one short round trip and fails fast
// with ``ServiceError/unavailable(_:)`` while its database cannot be reached.
import Foundation

public protocol JobQueue: AnyObject, Sendable {
    /// The model names requests may pick (the first is the default).
    var catalog: ModelCatalog { get }
    var configuration: ServiceConfiguration { get }

    /// Queues a job (its seed resolved now) or says why not (full queue: 429, bad field: 422, ...).
    func submit(_ spec: JobSpec) throws(ServiceError) -> JobSnapshot
    /// The job's current state.
    func job(_ id: JobID) throws(ServiceError) -> JobSnapshot
    /// The job's events: its current state first, then every change until the final event.
    func events(_ id: JobID) throws(ServiceError) -> AsyncStream<JobEvent>
    /// Cancels a queued job at once, or asks a running one to stop after its current step.
    @discardableResult
    func cancel(_ id: JobID) throws(ServiceError) -> JobSnapshot
    /// The images of a finished (or cancelled-with-partial) job.
    func images(_ id: JobID) throws(ServiceError) -> [JobImage]
    /// One image's PNG bytes (with its `parameters` chunk).
    func png(_ id: JobID, index: Int) throws(ServiceError) -> [UInt8]
    var health: GenerationService.Health { get }
    /// The model's pipeline when this process has it loaded (front ends show its defaults); nil on
    /// an API node that does not generate.
    func loadedPipeline(_ model: String?) -> DiffusionPipeline?
    /// Loads a model now where this process generates; elsewhere checks only that it is known.
    func preload(model: String?) throws
    /// Stops taking jobs and waits (up to `timeout`) for work in hand to stop.
    func shutdown(timeout: TimeInterval)
}

extension JobQueue {
    public func loadedPipeline() -> DiffusionPipeline? { loadedPipeline(nil) }
    public func shutdown() { shutdown(timeout: 30) }

    /// Waits until the job has finished and returns its final state.
    public func waitUntilFinished(_ id: JobID) async throws(ServiceError) -> JobSnapshot {
        let stream = try events(id)
        for await event in stream {
            switch event {
            case let .succeeded(s), let .failed(s), let .cancelled(s): return s
            default: continue
            }
        }
        return try job(id)
    }
}

extension JobID {
    /// A new random id (`job_` and 32 hex digits).
    public static func make() -> JobID { random() }
}
