import Foundation

/// A job's mutable state inside the service. Only touched with the service's lock held (hence
/// `@unchecked Sendable`).
final class JobRecord: @unchecked Sendable {
    let id: JobID
    let spec: JobSpec
    let model: String
    let seed: UInt64
    let created: Date
    var status: JobStatus = .queued
    var started: Date?
    var finished: Date?
    var progress: JobProgress?
    var error: String?
    var images: [JobImage] = []
    var partial = false
    var warnings: [String] = []
    var timings: GenerationResult.Timings?
    var resolved: ResolvedRequest?
    /// Set by `cancel` while running; the runner's step callback reads it.
    var cancelRequested = false
    var subscribers: [UUID: AsyncStream<JobEvent>.Continuation] = [:]

    init(id: JobID, spec: JobSpec, model: String, seed: UInt64, created: Date) {
        (self.id, self.spec, self.model, self.seed, self.created) = (id, spec, model, seed, created)
    }

    func snapshot(queuePosition: Int?) -> JobSnapshot {
        JobSnapshot(id: id, status: status, model: model, queuePosition: status == .queued ? queuePosition : nil, progress: progress,
                    seed: seed, created: created, started: started, finished: finished, error: error, imageCount: images.count,
                    partial: partial, warnings: warnings, timings: timings, resolved: resolved)
    }

    /// Sends `event` to every subscriber, and ends their streams after a final event.
    func emit(_ event: JobEvent) {
        for c in subscribers.values { c.yield(event) }
        if event.isTerminal {
            let ending = subscribers.values
            subscribers = [:]
            for c in ending { c.finish() }
        }
    }

    /// The final event for this job's current (finished) state.
    func terminalEvent(_ snapshot: JobSnapshot) -> JobEvent {
        switch status {
        case .succeeded: .succeeded(snapshot)
        case .cancelled: .cancelled(snapshot)
        default: .failed(snapshot)
        }
    }
}
