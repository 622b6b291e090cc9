import Foundation

/// Limits and retention of a ``GenerationService``.
public struct ServiceConfiguration: Sendable {
    /// Jobs that may wait (not counting the running one); a submission beyond it is refused.
    public var queueSize: Int = 16
    /// How long a finished job's results are kept.
    public var resultLifetime: TimeInterval = 600
    /// How many finished jobs are kept at most (the oldest are dropped first).
    public var maxFinishedJobs: Int = 64
    /// How many dropped ids are remembered, so a late poll gets "expired" rather than "not found".
    public var rememberedExpiredJobs: Int = 1024
    /// Per-request size limits, checked before any work.
    public var limits = GenerationLimits()
    /// Pipelines kept loaded at once when several models are served (each real one holds ~2-4 GB);
    /// the least recently used is unloaded to make room.
    public var maxLoadedModels: Int = 1
    /// The folder requests pick LoRAs from, by file name without `.safetensors` (their `loras`, and
    /// A1111 `<lora:NAME:SCALE>` tags in the prompt, which are then removed); nil: requests name none.
    public var loraDirectory: URL?
    /// Textual-inversion files (`path` or `path=TOKEN`) every model loads, so their tokens work in
    /// every request's prompts.
    public var textualInversions: [String] = []

    public init() {}

    /// The size limits every queue checks before accepting a job.
    public func check(_ request: GenerationRequest) throws(ServiceError) {
        let batch = request.prompts.count * request.imagesPerPrompt
        if batch > limits.maxBatch {
            throw .invalidRequest("num_images: a batch of \(batch) images is over the limit of \(limits.maxBatch)")
        }
        if let w = request.width, let h = request.height, w > 0, h > 0, w * h > limits.maxPixelsPerImage {
            throw .invalidRequest("width x height: \(w)x\(h) = \(w * h) pixels is over the limit of \(limits.maxPixelsPerImage) pixels per image (--max-pixels)")
        }
    }
}

/// Hooks for metrics and logs; called on the service's runner thread or the caller's, so they
/// must be cheap and thread-safe.
public protocol GenerationServiceObserver: Sendable {
    /// A job reached a final state.
    func jobFinished(_ snapshot: JobSnapshot)
    /// One denoising step took `seconds`.
    func stepCompleted(seconds: Double)
    /// A model finished loading.
    func modelLoaded(name: String, seconds: Double)
}

extension GenerationServiceObserver {
    public func jobFinished(_ snapshot: JobSnapshot) {}
    public func stepCompleted(seconds: Double) {}
    public func modelLoaded(name: String, seconds: Double) {}
}
