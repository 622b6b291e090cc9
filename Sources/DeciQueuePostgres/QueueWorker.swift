// A worker (`decidiffusion worker --queue postgresql://...`): claims jobs for the models it has
// loaded, runs each on an in-process GenerationService (so generation, previews, LoRAs and
// cancellation are exactly the embedded service's), renews its lease while the job runs, and
// writes the result once. One job at a time: a generation already uses every core.
//
// Failure handling: a heartbeat that finds the lease gone (it expired and another worker took the
// job) stops the local run and drops it. While the database is unreachable the job keeps running
// locally and its result write is retried with backoff; the write is fenced by the lease, so if
// the job was meanwhile re-run elsewhere this result is refused and only one is ever visible.
import DeciDiffusion
import Foundation
import Logging

public final class QueueWorker: @unchecked Sendable {
    public let name: String
    public let models: [String]
    let service: GenerationService
    let settings: QueueSettings
    let store: JobStore
    private let logger: Logger
    private let wake = NSCondition()
    private var woken = false
    private var stopping = false
    /// The job being run and whether a cancel notification arrived for it.
    private var current: JobID?
    private var cancelNotified = false
    private var lastAnnounce = Date.distantPast
    /// Jobs finished and written by this worker (for logs and tests).
    public private(set) var completed = 0

    public init(url: QueueURL, service: GenerationService, name: String, models: [String], settings: QueueSettings = QueueSettings(),
                logger: Logger = Logger(label: "decidiffusion.worker")) {
        (self.service, self.name, self.models, self.settings, self.logger) = (service, name, models, settings, logger)
        let box = WeakBox()
        let link = PostgresLink(url: url, logger: logger, listen: [JobStore.newJobChannel, JobStore.cancelChannel],
                                onNotify: { channel, payload in box.worker?.notified(channel: channel, payload: payload) },
                                onReconnect: { box.worker?.signal() })
        store = JobStore(link: link)
        box.worker = self
    }

    /// The configuration of a worker's in-process service: it holds one job at a time and keeps
    /// finished ones only until their result is written to the database.
    public static func localConfiguration(_ base: ServiceConfiguration) -> ServiceConfiguration {
        var c = base
        (c.queueSize, c.maxFinishedJobs, c.resultLifetime) = (1, 4, 300)
        return c
    }

    /// Claims and runs jobs until ``stop()``.
    public func run() throws(QueueError) {
        try PostgresJobQueue.migrateWaiting(store.link, logger: logger)
        logger.info("worker \(name) serving \(models.joined(separator: ", "))")
        while !isStopping {
            announceIfDue(running: nil)
            let claim: JobStore.Claim?
            do {
                try store.requeueExpired()
                claim = try store.claim(owner: name, models: models, lease: settings.leaseSeconds)
            } catch {
                logger.debug("claim: \(error)")
                waitForWake(seconds: 0.5)
                continue
            }
            guard let claim else {
                waitForWake(seconds: settings.pollSeconds)
                continue
            }
            runClaimed(claim)
        }
        store.retire(worker: name)
        store.link.close()
    }

    /// Stops soon: the current job stops at its next step and goes back to the queue for another
    /// worker.
    public func stop() {
        wake.lock()
        stopping = true
        woken = true
        wake.broadcast()
        wake.unlock()
    }

    // MARK: - One job

    private func runClaimed(_ claim: JobStore.Claim) {
        logger.info("\(name) runs \(claim.id) (attempt \(claim.attempt))")
        let spec: JobSpec
        let local: JobSnapshot
        do {
            spec = try StoredJSON.decode(StoredSpec.self, claim.spec, column: "deci_jobs.spec").jobSpec()
            local = try service.submit(spec)
        } catch {
            write(claim, JobStore.Outcome(state: .failed, error: "\(error)", warnings: [], timings: nil, partial: false, progress: nil,
                                          resolved: nil, images: []))
            return
        }
        wake.lock()
        current = claim.id
        cancelNotified = claim.cancelRequested
        wake.unlock()
        defer {
            wake.lock()
            current = nil
            wake.unlock()
        }
        // The local job's events, gathered for the heartbeat loop below.
        let latest = LatestEvents()
        let events: AsyncStream<JobEvent>
        do { events = try service.events(local.id) } catch {
            write(claim, JobStore.Outcome(state: .failed, error: "\(error)", warnings: [], timings: nil, partial: false, progress: nil,
                                          resolved: nil, images: []))
            return
        }
        Task {
            for await event in events { latest.take(event) }
            latest.end()
            self.signal()
        }
        var lastBeat = Date()
        var lastWritten = latest.current()
        var cancelSent = false
        var lost = false
        while true {
            waitForWake(seconds: 0.25)
            announceIfDue(running: claim.id)
            let now = latest.current()
            if now.final != nil { break }
            let cancelAsked = wake.withLock { cancelNotified || stopping }
            if cancelAsked && !cancelSent {
                _ = try? service.cancel(local.id)
                cancelSent = true
            }
            // Progress at most every 0.25 s, and the lease renewed every third of it regardless.
            let changed = now.progress != lastWritten.progress || now.previewStep != lastWritten.previewStep || now.resolved != lastWritten.resolved
            guard changed || Date().timeIntervalSince(lastBeat) > settings.leaseSeconds / 3 else { continue }
            let beat = JobStore.Beat(progress: now.progress, preview: now.previewStep != lastWritten.previewStep ? now.preview : nil,
                                     resolved: now.resolved != lastWritten.resolved ? now.resolved : nil)
            do {
                switch try store.heartbeat(claim, owner: name, lease: settings.leaseSeconds, beat: beat) {
                case nil:
                    // The lease was taken over: another worker runs this job now.
                    logger.warning("\(name) lost the lease of \(claim.id); dropping its run")
                    lost = true
                case true?:
                    wake.withLock { cancelNotified = true }
                case false?:
                    break
                }
                lastBeat = Date()
                lastWritten = now
            } catch {
                logger.debug("heartbeat of \(claim.id): \(error)")  // keep running; the result write retries
            }
            if lost {
                _ = try? service.cancel(local.id)
                break
            }
        }
        // Wait for the local job to end (a cancel stops it after its current step).
        let final = latest.waitForFinal()
        guard !lost, let final else { return }
        if wake.withLock({ stopping && !cancelNotified }) {
            // This worker is stopping, not the client cancelling: hand the job back at once.
            _ = try? store.release(claim, owner: name)
            return
        }
        let images = (try? service.images(local.id)) ?? []
        let stored = images.map { StoredImage(png: Data($0.png).base64EncodedString(), parameters: StoredParameters($0.parameters)) }
        write(claim, JobStore.Outcome(state: final.status, error: final.error, warnings: final.warnings, timings: final.timings,
                                      partial: final.partial, progress: final.progress, resolved: final.resolved.map { StoredJSON.encode(StoredResolved($0)) },
                                      images: stored))
    }

    /// Writes the outcome, retrying with backoff while the database is unreachable (for up to a
    /// few minutes; after that the job's lease has long expired and it runs again elsewhere).
    private func write(_ claim: JobStore.Claim, _ outcome: JobStore.Outcome) {
        var delay = 0.1
        let giveUp = Date().addingTimeInterval(max(120, settings.leaseSeconds * 4))
        while Date() < giveUp {
            do {
                if try store.finish(claim, owner: name, outcome: outcome) {
                    completed += 1
                    logger.info("\(name) finished \(claim.id): \(outcome.state.rawValue)")
                } else {
                    logger.warning("\(name): the result of \(claim.id) was refused (another attempt owns the job)")
                }
                return
            } catch {
                if case .server = error { logger.error("\(name): writing \(claim.id): \(error)"); return }
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 2)
            }
        }
        logger.error("\(name): gave up writing \(claim.id); it will run again after its lease expires")
    }

    /// Tells API nodes (their /healthz) that this worker is alive and which models it holds.
    private func announceIfDue(running: JobID?) {
        guard Date().timeIntervalSince(lastAnnounce) > settings.leaseSeconds / 3 else { return }
        if (try? store.announce(worker: name, models: models, running: running)) != nil { lastAnnounce = Date() }
    }

    // MARK: - Wake-ups

    private var isStopping: Bool { wake.withLock { stopping } }

    private func waitForWake(seconds: Double) {
        wake.lock()
        if !woken { _ = wake.wait(until: Date().addingTimeInterval(seconds)) }
        woken = false
        wake.unlock()
    }

    func signal() {
        wake.lock()
        woken = true
        wake.broadcast()
        wake.unlock()
    }

    func notified(channel: String, payload: String) {
        wake.lock()
        if channel == JobStore.cancelChannel {
            guard payload == current?.rawValue else { wake.unlock(); return }
            cancelNotified = true
        } else if channel == JobStore.newJobChannel, !models.contains(payload) {
            wake.unlock()
            return
        }
        woken = true
        wake.broadcast()
        wake.unlock()
    }
}

private final class WeakBox: @unchecked Sendable {
    weak var worker: QueueWorker?
}

/// The latest state of the local job, as its event stream reports it.
private final class LatestEvents: @unchecked Sendable {
    struct State {
        var progress: JobProgress?
        var preview: (step: Int, kind: String, png: [UInt8])?
        var previewStep: Int?
        var resolved: String?
        var final: JobSnapshot?
    }

    private let lock = NSCondition()
    private var state = State()
    private var ended = false

    func take(_ event: JobEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case let .started(s):
            state.resolved = s.resolved.map { StoredJSON.encode(StoredResolved($0)) }
        case let .progress(p, preview):
            state.progress = p
            if let preview { (state.preview, state.previewStep) = ((preview.step, preview.kind.rawValue, preview.png), preview.step) }
        case let .succeeded(s), let .failed(s), let .cancelled(s):
            state.final = s
            if state.resolved == nil { state.resolved = s.resolved.map { StoredJSON.encode(StoredResolved($0)) } }
        case .queued:
            break
        }
    }

    func end() {
        lock.lock()
        ended = true
        lock.broadcast()
        lock.unlock()
    }

    func current() -> State { lock.withLock { state } }

    func waitForFinal() -> JobSnapshot? {
        lock.lock()
        defer { lock.unlock() }
        while !ended && state.final == nil { lock.wait() }
        return state.final
    }
}
