// What every front end (the native job API, the A1111 and OpenAI routes) needs from a job queue.
// Two implementations: GenerationService, the embedded in-process queue with its own runner (the
// default), and the PostgreSQL-backed queue of DeciQueuePostgres, where many API nodes and workers
// on many machines share one database. The HTTP layer only sees this protocol.
//
// The calls are synchronous because the in-process queue answers each under one lock in
// microseconds; a database-backed implementation answers with one short round trip and fails fast
// with ``ServiceError/unavailable(_:)`` while its database cannot be reached.
import DeciImage
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

extension GenerationService.Health {
    public init(models: [(name: String, loaded: Bool)], defaultModel: String, loading: String?, queueDepth: Int,
                queueCapacity: Int, running: JobID?, jobsKept: Int) {
        (self.models, self.defaultModel, self.loading, self.queueDepth) = (models, defaultModel, loading, queueDepth)
        (self.queueCapacity, self.running, self.jobsKept) = (queueCapacity, running, jobsKept)
    }
}

// Values a database-backed queue rebuilds from what it stored (their memberwise initializers are internal).

extension ResolvedRequest {
    public init(prompts: [String], negativePrompts: [String], imagesPerPrompt: Int, width: Int, height: Int, steps: Int,
                guidanceScale: Double, guidanceRescale: Double, seed: UInt64, eta: Double, clipSkip: Int, strength: Double,
                scheduler: String?, initImage: RGBImage?, mask: RGBImage?, vaeTiling: Bool, promptWeighting: PromptWeighting,
                padCondUncond: Bool) {
        (self.prompts, self.negativePrompts, self.imagesPerPrompt, self.width, self.height, self.steps) = (prompts, negativePrompts, imagesPerPrompt, width, height, steps)
        (self.guidanceScale, self.guidanceRescale, self.seed, self.eta, self.clipSkip, self.strength) = (guidanceScale, guidanceRescale, seed, eta, clipSkip, strength)
        (self.scheduler, self.initImage, self.mask, self.vaeTiling) = (scheduler, initImage, mask, vaeTiling)
        (self.promptWeighting, self.padCondUncond) = (promptWeighting, padCondUncond)
    }
}

extension GenerationResult.Timings {
    public init(textEncoder: Double, denoising: Double, vaeEncode: Double, vaeDecode: Double, steps: Int) {
        (self.textEncoder, self.denoising, self.vaeEncode, self.vaeDecode, self.steps) = (textEncoder, denoising, vaeEncode, vaeDecode, steps)
    }
}

extension JobID {
    /// A new random id (`job_` and 32 hex digits).
    public static func make() -> JobID { random() }
}

extension JobImage {
    public init(image: RGBImage, png: [UInt8], parameters: GenerationParameters) {
        (self.image, self.png, self.parameters) = (image, png, parameters)
    }
}

extension JobPreview {
    public init(kind: Kind, step: Int, images: [RGBImage], png: [UInt8]) {
        (self.kind, self.step, self.images, self.png) = (kind, step, images, png)
    }
}

extension JobSnapshot {
    public init(id: JobID, status: JobStatus, model: String, queuePosition: Int?, progress: JobProgress?, seed: UInt64, created: Date,
                started: Date?, finished: Date?, error: String?, imageCount: Int, partial: Bool, warnings: [String],
                timings: GenerationResult.Timings?, resolved: ResolvedRequest?) {
        (self.id, self.status, self.model, self.queuePosition, self.progress, self.seed) = (id, status, model, queuePosition, progress, seed)
        (self.created, self.started, self.finished, self.error, self.imageCount) = (created, started, finished, error, imageCount)
        (self.partial, self.warnings, self.timings, self.resolved) = (partial, warnings, timings, resolved)
    }
}
