// The vocabulary of the generation service: what a client submits, what it can observe about a job,
// and the errors it can get back. API-neutral: the native job API, the A1111 and OpenAI routes and a
// database-backed queue all speak these types.
import DeciImage
import Foundation

/// A job's identifier: `job_` and 32 random hex digits, so ids cannot be guessed or enumerated.
public struct JobID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    static func random() -> JobID {
        var g = SystemRandomNumberGenerator()
        let hex = (0..<2).map { _ in
            let s = String(g.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }.joined()
        return JobID(rawValue: "job_" + hex)
    }
}

/// Where a job is in its life: queued → running → succeeded | failed | cancelled, or queued → cancelled.
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// How far a running job has got.
public struct JobProgress: Sendable, Equatable {
    /// Denoising steps done (0 before the first).
    public var step: Int
    public var totalSteps: Int
    /// Mean wall time per step so far; nil before the first step.
    public var secondsPerStep: Double?
    /// Expected seconds until the denoising loop ends (mean step time x steps left); nil before the first step.
    public var etaSeconds: Double?

    public init(step: Int, totalSteps: Int, secondsPerStep: Double? = nil, etaSeconds: Double? = nil) {
        (self.step, self.totalSteps, self.secondsPerStep, self.etaSeconds) = (step, totalSteps, secondsPerStep, etaSeconds)
    }
}

/// Which previews a job produces while it runs.
public struct PreviewOptions: Sendable, Equatable {
    /// A cheap latent-to-RGB preview every this many steps (0: none).
    public var every: Int
    /// Instead of the cheap map, a full VAE decode of the current x0 estimate every this many steps
    /// (0: never). Costs about one VAE decode each time.
    public var decodeEvery: Int
    /// Upscale the cheap preview (1/8 of the output size) to the output size.
    public var upscale: Bool

    public init(every: Int = 0, decodeEvery: Int = 0, upscale: Bool = false) {
        (self.every, self.decodeEvery, self.upscale) = (every, decodeEvery, upscale)
    }

    public static let none = PreviewOptions()
}

/// What a client asks the service to do.
public struct JobSpec: Sendable {
    /// The generation itself; its `seed` is ignored in favour of ``seed``.
    public var request: GenerationRequest
    /// nil (or a negative value at the API surface): a random seed, chosen at submission and reported.
    public var seed: UInt64?
    /// One of the service's model names; nil: the default model.
    public var model: String?
    public var preview: PreviewOptions
    /// Keep the image of a job cancelled while running (the current x0 estimate, decoded), as
    /// A1111's interrupt returns it.
    public var keepPartialOnCancel: Bool
    /// LoRAs by name in the service's ``ServiceConfiguration/loraDirectory`` (with the prompt's
    /// `<lora:...>` tags), merged for this job; the model keeps them until a job asks for others.
    public var loras: [LoRAReference] = []

    public init(request: GenerationRequest, seed: UInt64? = nil, model: String? = nil, preview: PreviewOptions = .none,
                keepPartialOnCancel: Bool = true, loras: [LoRAReference] = []) {
        (self.request, self.seed, self.model, self.preview, self.keepPartialOnCancel) = (request, seed, model, preview, keepPartialOnCancel)
        self.loras = loras
    }
}

/// One image a job produced: the decoded pixels and the PNG (with its A1111 `parameters` chunk) that
/// the service hands out.
public struct JobImage: Sendable {
    // Public (the memberwise one is internal) so a database-backed queue can rebuild stored values.
    public init(image: RGBImage, png: [UInt8], parameters: GenerationParameters) {
        (self.image, self.png, self.parameters) = (image, png, parameters)
    }

    public var image: RGBImage
    public var png: [UInt8]
    public var parameters: GenerationParameters
}

/// A preview of a running job.
public struct JobPreview: Sendable {
    // Public (the memberwise one is internal) so a database-backed queue can rebuild stored values.
    public init(kind: Kind, step: Int, images: [RGBImage], png: [UInt8]) {
        (self.kind, self.step, self.images, self.png) = (kind, step, images, png)
    }

    public enum Kind: String, Sendable { case approximate, decoded }
    public var kind: Kind
    public var step: Int
    /// One per image of the batch.
    public var images: [RGBImage]
    /// The first image as PNG (what event streams send).
    public var png: [UInt8]
}

/// Everything a client can see about a job at one moment.
public struct JobSnapshot: Sendable {
    // Public (the memberwise one is internal) so a database-backed queue can rebuild stored values.
    public init(id: JobID, status: JobStatus, model: String, queuePosition: Int?, progress: JobProgress?, seed: UInt64, created: Date,
                started: Date?, finished: Date?, error: String?, imageCount: Int, partial: Bool, warnings: [String],
                timings: GenerationResult.Timings?, resolved: ResolvedRequest?) {
        (self.id, self.status, self.model, self.queuePosition, self.progress, self.seed) = (id, status, model, queuePosition, progress, seed)
        (self.created, self.started, self.finished, self.error, self.imageCount) = (created, started, finished, error, imageCount)
        (self.partial, self.warnings, self.timings, self.resolved) = (partial, warnings, timings, resolved)
    }

    public var id: JobID
    public var status: JobStatus
    public var model: String
    /// 1-based position among waiting jobs while queued; nil otherwise.
    public var queuePosition: Int?
    /// While running (and the last value once finished).
    public var progress: JobProgress?
    /// The seed the job runs with (resolved at submission).
    public var seed: UInt64
    public var created: Date
    public var started: Date?
    public var finished: Date?
    /// Why the job failed.
    public var error: String?
    /// Images available (a cancelled job may have a partial one).
    public var imageCount: Int
    /// True when the images are the partial result of a cancelled run.
    public var partial: Bool
    public var warnings: [String]
    /// Stage times once finished.
    public var timings: GenerationResult.Timings?
    /// The request with every default filled in (nil if it failed to resolve).
    public var resolved: ResolvedRequest?
}

/// What a job reports while it lives; a stream starts with the job's current state and ends after
/// its final event.
public enum JobEvent: Sendable {
    case queued(position: Int)
    case started(JobSnapshot)
    case progress(JobProgress, preview: JobPreview?)
    case succeeded(JobSnapshot)
    case failed(JobSnapshot)
    case cancelled(JobSnapshot)

    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .cancelled: true
        default: false
        }
    }
}

/// Why the service refused a call. Each case says what an HTTP front end should answer.
public enum ServiceError: Error, CustomStringConvertible, Equatable {
    /// The waiting queue is full; retry after the given seconds (HTTP 429 + Retry-After).
    case queueFull(capacity: Int, retryAfterSeconds: Int)
    /// A field is invalid (HTTP 400); the message names it.
    case invalidRequest(String)
    /// The model name is not one the service discovered (HTTP 400/404).
    case unknownModel(String, available: [String])
    /// No such job (HTTP 404).
    case notFound(JobID)
    /// The job existed but its results were dropped (HTTP 410).
    case expired(JobID)
    /// An image index outside the job's images (HTTP 404).
    case noImage(JobID, index: Int, count: Int)
    /// The service is stopping (HTTP 503).
    case shuttingDown
    /// The job store cannot be reached (a database-backed queue whose database is down); retry
    /// later (HTTP 503 + Retry-After).
    case unavailable(String)

    public var description: String {
        switch self {
        case let .queueFull(capacity, retry): "the queue is full (\(capacity) jobs waiting); retry in \(retry) s"
        case let .invalidRequest(message): message
        case let .unknownModel(name, available): "model: \"\(name)\" is not served here (available: \(available.joined(separator: ", ")))"
        case let .notFound(id): "job \(id) not found"
        case let .expired(id): "job \(id) expired: its results were dropped"
        case let .noImage(id, index, count): "job \(id) has no image \(index) (it has \(count))"
        case .shuttingDown: "the service is shutting down"
        case let .unavailable(why): "the job queue is unavailable (\(why)); retry shortly"
        }
    }
}
