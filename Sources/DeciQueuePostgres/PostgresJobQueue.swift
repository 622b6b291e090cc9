// The HTTP API's view of the PostgreSQL queue (`decidiffusion serve --queue postgresql://...`):
// submissions become rows, reads are queries, and a job's events come from its row, re-read when
// a NOTIFY says it changed (with a slow poll in case a notification was missed). It generates
// nothing itself; workers (QueueWorker) do, on this machine or others.
//
// Every node also does its share of housekeeping, each step safe to run on any number of nodes:
// expired leases go back to the queue, and expired results are dropped.
import DeciDiffusion
import DeciImage
import Foundation
import Logging

/// Settings shared by API nodes and workers.
public struct QueueSettings: Sendable {
    /// A worker's lease: renewed every third of it; a worker silent for this long loses its job.
    public var leaseSeconds: Double = 30
    /// Runs a job gets (a run whose worker died counts) before it fails.
    public var maxAttempts: Int = 3
    /// The fallback poll for changes a notification did not announce.
    public var pollSeconds: Double = 2
    public init() {}
}

public final class PostgresJobQueue: JobQueue, @unchecked Sendable {
    public let catalog: ModelCatalog
    public let configuration: ServiceConfiguration
    public let settings: QueueSettings
    let store: JobStore
    let watchers = Watchers()
    private let logger: Logger
    private var housekeeping: Thread?
    private let stopLock = NSCondition()
    private var stopping = false

    /// Connects (retrying in the background if the database is down now) and migrates the schema.
    /// Throws only for a bad URL or a schema from a newer program.
    public init(url: QueueURL, catalog: ModelCatalog, configuration: ServiceConfiguration, settings: QueueSettings = QueueSettings(),
                logger: Logger = Logger(label: "decidiffusion.queue")) throws(QueueError) {
        (self.catalog, self.configuration, self.settings, self.logger) = (catalog, configuration, settings, logger)
        let watchers = self.watchers
        let link = PostgresLink(url: url, logger: logger, listen: [JobStore.jobChannel],
                                onNotify: { _, payload in watchers.changed(JobID(rawValue: payload)) },
                                onReconnect: { watchers.changedAll() })
        store = JobStore(link: link)
        try Self.migrateWaiting(link, logger: logger)
        let thread = Thread { [weak self] in self?.housekeepingLoop() }
        thread.name = "decidiffusion-queue-housekeeping"
        housekeeping = thread
        thread.start()
    }

    /// Migrates, waiting for a database that is not up yet (a node may start before it).
    static func migrateWaiting(_ link: PostgresLink, logger: Logger) throws(QueueError) {
        var warned = false
        while true {
            do { return try QueueSchema.migrate(link) } catch {
                guard case .unavailable = error else { throw error }
                if !warned { logger.warning("waiting for the database: \(error)") }
                warned = true
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
    }

    // MARK: - JobQueue

    public func submit(_ spec: JobSpec) throws(ServiceError) -> JobSnapshot {
        let entry = try catalog.entry(named: spec.model)
        let seed = spec.seed ?? GenerationRequest.resolveSeed(nil)
        var request = spec.request
        request.seed = seed
        try configuration.check(request)
        var stored = spec
        stored.request = request
        stored.seed = seed
        stored.model = entry.name
        let id = JobID.make()
        let specJSON = StoredJSON.encode(try StoredSpec(stored, seed: seed))
        let added: Bool
        do {
            added = try store.enqueue(id: id, model: entry.name, seed: seed, spec: specJSON, maxAttempts: settings.maxAttempts,
                                      queueLimit: configuration.queueSize)
        } catch { throw error.serviceError }
        guard added else { throw .queueFull(capacity: configuration.queueSize, retryAfterSeconds: 5) }
        return try job(id)
    }

    public func job(_ id: JobID) throws(ServiceError) -> JobSnapshot {
        try snapshot(row(id))
    }

    public func events(_ id: JobID) throws(ServiceError) -> AsyncStream<JobEvent> {
        let first = try row(id)
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let task = Task { [weak self] in await self?.follow(first, continuation: continuation) }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    @discardableResult
    public func cancel(_ id: JobID) throws(ServiceError) -> JobSnapshot {
        let state: JobStatus?
        do { state = try store.cancel(id) } catch { throw error.serviceError }
        guard state != nil else { throw try missing(id) }
        return try job(id)
    }

    public func images(_ id: JobID) throws(ServiceError) -> [JobImage] {
        let row = try self.row(id)
        guard row.imageCount > 0 else { return [] }
        do {
            return try store.images(id).map { stored in
                let parameters = try StoredJSON.decode(StoredParameters.self, stored.parameters, column: "deci_job_images.parameters")
                let image: RGBImage
                do { image = try ImageFile.decode(stored.png).image } catch { throw QueueError.corrupt("deci_job_images.png of \(id): \(error)") }
                return JobImage(image: image, png: stored.png, parameters: parameters.parameters)
            }
        } catch let e as QueueError { throw e.serviceError } catch { throw .unavailable("\(error)") }
    }

    public func png(_ id: JobID, index: Int) throws(ServiceError) -> [UInt8] {
        let all = try images(id)
        guard all.indices.contains(index) else { throw .noImage(id, index: index, count: all.count) }
        return all[index].png
    }

    /// Queue depth and the models live workers hold. With the database down: nothing loaded, so
    /// /healthz answers 503.
    public var health: GenerationService.Health {
        let stats = try? store.stats(workerTimeout: settings.leaseSeconds * 2)
        return GenerationService.Health(models: catalog.names.map { ($0, stats?.servedModels.contains($0) ?? false) },
                                        defaultModel: catalog.defaultName, loading: nil, queueDepth: stats?.queued ?? 0,
                                        queueCapacity: configuration.queueSize, running: stats?.running.first, jobsKept: stats?.kept ?? 0)
    }

    public func loadedPipeline(_ model: String?) -> DiffusionPipeline? { nil }

    /// Models load on workers; here a name is only checked.
    public func preload(model: String?) throws { _ = try catalog.entry(named: model) }

    public func shutdown(timeout: TimeInterval) {
        stopLock.lock()
        stopping = true
        stopLock.broadcast()
        stopLock.unlock()
        watchers.changedAll()
    }

    // MARK: - Internals

    private func row(_ id: JobID) throws(ServiceError) -> JobStore.Row {
        let found: JobStore.Row?
        do { found = try store.fetch(id) } catch { throw error.serviceError }
        guard let found else { throw try missing(id) }
        return found
    }

    private func missing(_ id: JobID) throws(ServiceError) -> ServiceError {
        do { return try store.isExpired(id) ? .expired(id) : .notFound(id) } catch { throw error.serviceError }
    }

    func snapshot(_ row: JobStore.Row) throws(ServiceError) -> JobSnapshot {
        do {
            var resolved: ResolvedRequest?
            if let text = row.resolved {
                let spec = try StoredJSON.decode(StoredSpec.self, row.spec, column: "deci_jobs.spec").jobSpec()
                resolved = try StoredJSON.decode(StoredResolved.self, text, column: "deci_jobs.resolved")
                    .resolved(initImage: spec.request.initImage, mask: spec.request.mask)
            }
            let warnings = try row.warnings.map { try StoredJSON.decode([String].self, $0, column: "deci_jobs.warnings") } ?? []
            let timings = try row.timings.map { try StoredJSON.decode(StoredTimings.self, $0, column: "deci_jobs.timings").timings }
            return JobSnapshot(id: row.id, status: row.state, model: row.model, queuePosition: row.state == .queued ? row.position : nil,
                               progress: row.progress, seed: row.seed, created: row.created, started: row.started, finished: row.finished,
                               error: row.error, imageCount: row.imageCount, partial: row.partial, warnings: warnings, timings: timings,
                               resolved: resolved)
        } catch let e as QueueError { throw e.serviceError } catch { throw .unavailable("deci_jobs.spec of \(row.id): \(error)") }
    }

    /// Feeds a job's event stream from its row: re-read on each notification for it, and every
    /// `pollSeconds` regardless; emits what changed, and ends after the final event.
    private func follow(_ first: JobStore.Row, continuation: AsyncStream<JobEvent>.Continuation) async {
        let id = first.id
        let signal = watchers.watch(id)
        defer { watchers.unwatch(id, signal) }
        var last: JobStore.Row?
        var row = first
        var lastPreviewStep: Int?
        while !Task.isCancelled {
            if let event = try? self.events(from: last, to: row, previewStep: &lastPreviewStep) {
                for e in event { continuation.yield(e) }
                if event.last?.isTerminal == true { break }
            }
            last = row
            await signal.wait(seconds: settings.pollSeconds)
            if Task.isCancelled { break }
            guard let next = try? store.fetch(id) else {
                // Database down (keep the stream open and retry) or the job dropped (end it).
                if (try? store.isExpired(id)) == true { break }
                continue
            }
            row = next
        }
        continuation.finish()
    }

    /// The events between two readings of a row.
    private func events(from old: JobStore.Row?, to new: JobStore.Row, previewStep: inout Int?) throws(ServiceError) -> [JobEvent] {
        var out: [JobEvent] = []
        let snap = try snapshot(new)
        switch new.state {
        case .queued:
            if old == nil || old?.state != .queued || old?.position != new.position { out.append(.queued(position: new.position)) }
        case .running:
            // A new attempt (or the first reading) starts again.
            if old?.state != .running || old?.attempts != new.attempts { out.append(.started(snap)) }
            if let p = new.progress, p != old?.progress || new.previewStep != previewStep {
                var preview: JobPreview?
                if let step = new.previewStep, step != previewStep, let stored = try? store.preview(new.id),
                   let image = try? ImageFile.decode(stored.png).image {
                    preview = JobPreview(kind: JobPreview.Kind(rawValue: stored.kind) ?? .approximate, step: stored.step, images: [image], png: stored.png)
                    previewStep = step
                }
                out.append(.progress(p, preview: preview))
            }
        case .succeeded: out.append(.succeeded(snap))
        case .failed: out.append(.failed(snap))
        case .cancelled: out.append(.cancelled(snap))
        }
        return out
    }

    private func housekeepingLoop() {
        var lastCleanup = Date.distantPast
        while true {
            stopLock.lock()
            if !stopping { _ = stopLock.wait(until: Date().addingTimeInterval(max(0.5, settings.leaseSeconds / 3))) }
            let stop = stopping
            stopLock.unlock()
            if stop { return }
            do {
                try store.requeueExpired()
                if Date().timeIntervalSince(lastCleanup) > min(30, configuration.resultLifetime / 2) {
                    try store.cleanup(lifetime: configuration.resultLifetime)
                    lastCleanup = Date()
                }
            } catch {
                logger.debug("housekeeping: \(error)")
            }
        }
    }
}

/// Who waits for which job's notifications.
final class Watchers: @unchecked Sendable {
    private let lock = NSLock()
    private var signals: [JobID: [ObjectIdentifier: Signal]] = [:]

    func watch(_ id: JobID) -> Signal {
        let s = Signal()
        lock.withLock { signals[id, default: [:]][ObjectIdentifier(s)] = s }
        return s
    }

    func unwatch(_ id: JobID, _ s: Signal) {
        lock.withLock {
            signals[id]?[ObjectIdentifier(s)] = nil
            if signals[id]?.isEmpty == true { signals[id] = nil }
        }
    }

    func changed(_ id: JobID) {
        for s in lock.withLock({ signals[id].map { Array($0.values) } ?? [] }) { s.fire() }
    }

    func changedAll() {
        for s in lock.withLock({ signals.values.flatMap(\.values) }) { s.fire() }
    }
}

/// A wake-up flag an async loop sleeps on, in short naps so it needs no continuation bookkeeping:
/// a notification is seen within 50 ms; with none, the loop runs after `seconds`.
final class Signal: @unchecked Sendable {
    private let lock = NSLock()
    private var fired = false

    func fire() { lock.withLock { fired = true } }

    func wait(seconds: Double) async {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && !Task.isCancelled {
            if lock.withLock({ defer { fired = false }; return fired }) { return }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }
}
