// A long-lived generation service: the loaded pipeline(s), a bounded FIFO queue and one runner
// thread (a generation already uses every core, so jobs run one at a time per process). Every front
// end (HTTP APIs, a database-backed worker) is a thin shell over this class.
//
// Concurrency: all job state sits behind one lock; the runner is a plain thread because a
// generation is a long synchronous computation that must not occupy Swift's cooperative pool.
// Events are yielded while the lock is held, so every subscriber sees a job's events in the order
// they happened.
import DeciImage
import Foundation

public final class GenerationService: JobQueue, @unchecked Sendable {
    public let catalog: ModelCatalog
    public let configuration: ServiceConfiguration
    let observer: (any GenerationServiceObserver)?

    let lock = NSCondition()
    var jobs: [JobID: JobRecord] = [:]
    /// Waiting jobs, oldest first.
    var waiting: [JobID] = []
    var runningID: JobID?
    /// Finished jobs, oldest first (for dropping by age and count).
    var finishedOrder: [JobID] = []
    var expiredIDs = Set<JobID>()
    var expiredOrder: [JobID] = []
    /// Loaded pipelines by model name, least recently used first in `loadOrder`.
    var pipelines: [String: DiffusionPipeline] = [:]
    var loadOrder: [String] = []
    var loadingModel: String?
    var stopping = false
    /// Mean wall time of recent jobs, for Retry-After.
    var recentJobSeconds: [Double] = []
    var runner: Thread?
    var runnerDone = false

    public init(catalog: ModelCatalog, configuration: ServiceConfiguration = ServiceConfiguration(),
                observer: (any GenerationServiceObserver)? = nil) {
        self.catalog = catalog
        self.configuration = configuration
        self.observer = observer
        let thread = Thread { [weak self] in self?.runLoop() }
        thread.name = "decidiffusion-runner"
        thread.stackSize = 16 << 20
        runner = thread
        thread.start()
    }

    deinit {
        lock.lock()
        stopping = true
        lock.broadcast()
        lock.unlock()
    }

    /// Loads a model now (the default one when nil) so the first job does not wait for it.
    public func preload(model: String? = nil) throws {
        let entry = try catalog.entry(named: model)
        _ = try pipeline(for: entry)
    }

    // MARK: - Submitting and watching jobs

    /// Queues a job. Fields are checked against the model before it is queued when the model is
    /// loaded (always for a single-model service once preloaded); otherwise when it starts.
    public func submit(_ spec: JobSpec) throws(ServiceError) -> JobSnapshot {
        let entry = try catalog.entry(named: spec.model)
        let seed = spec.seed ?? GenerationRequest.resolveSeed(nil)
        var request = spec.request
        request.seed = seed
        try configuration.check(request)
        lock.lock()
        defer { lock.unlock() }
        sweep(now: Date())
        guard !stopping else { throw .shuttingDown }
        var resolved: ResolvedRequest?
        if let pipeline = pipelines[entry.name] {
            do { resolved = try pipeline.resolve(request, limits: configuration.limits) } catch {
                throw .invalidRequest(String(describing: error))
            }
        }
        guard waiting.count < configuration.queueSize else {
            throw .queueFull(capacity: configuration.queueSize, retryAfterSeconds: retryAfterLocked())
        }
        var stored = spec
        stored.request = request
        stored.seed = seed
        let record = JobRecord(id: JobID.random(), spec: stored, model: entry.name, seed: seed, created: Date())
        record.resolved = resolved
        jobs[record.id] = record
        waiting.append(record.id)
        lock.signal()
        return record.snapshot(queuePosition: waiting.count)
    }

    /// The job's current state.
    public func job(_ id: JobID) throws(ServiceError) -> JobSnapshot {
        lock.lock()
        defer { lock.unlock() }
        return try recordLocked(id).snapshot(queuePosition: positionLocked(id))
    }

    /// A job's events: first its current state (queued position, or started and the latest
    /// progress, or its final event), then every change until the final event, which ends the
    /// stream. A consumer that stops listening does not affect the job.
    public func events(_ id: JobID) throws(ServiceError) -> AsyncStream<JobEvent> {
        lock.lock()
        defer { lock.unlock() }
        let record = try recordLocked(id)
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let snapshot = record.snapshot(queuePosition: positionLocked(id))
        switch record.status {
        case .queued:
            continuation.yield(.queued(position: snapshot.queuePosition ?? 1))
        case .running:
            continuation.yield(.started(snapshot))
            if let p = record.progress { continuation.yield(.progress(p, preview: nil)) }
        case .succeeded, .failed, .cancelled:
            continuation.yield(record.terminalEvent(snapshot))
            continuation.finish()
            return stream
        }
        let key = UUID()
        record.subscribers[key] = continuation
        // Called from inside `finish()` while the lock may be held: remove the subscriber later.
        continuation.onTermination = { [weak self] _ in
            DispatchQueue.global().async { [weak self] in
                guard let self else { return }
                self.lock.lock()
                self.jobs[id]?.subscribers[key] = nil
                self.lock.unlock()
            }
        }
        return stream
    }

    /// Cancels a job: a queued one leaves the queue at once; a running one stops after its current
    /// step (keeping the partial image when its spec asks); a finished one is left as it is.
    @discardableResult
    public func cancel(_ id: JobID) throws(ServiceError) -> JobSnapshot {
        lock.lock()
        defer { lock.unlock() }
        let record = try recordLocked(id)
        switch record.status {
        case .queued:
            waiting.removeAll { $0 == id }
            record.status = .cancelled
            finishLocked(record)
            announcePositionsLocked()
        case .running:
            record.cancelRequested = true
        case .succeeded, .failed, .cancelled:
            break
        }
        return record.snapshot(queuePosition: positionLocked(id))
    }

    /// The images of a finished (or cancelled-with-partial) job.
    public func images(_ id: JobID) throws(ServiceError) -> [JobImage] {
        lock.lock()
        defer { lock.unlock() }
        return try recordLocked(id).images
    }

    /// One image's PNG bytes (with its `parameters` chunk).
    public func png(_ id: JobID, index: Int) throws(ServiceError) -> [UInt8] {
        let all = try images(id)
        guard all.indices.contains(index) else { throw .noImage(id, index: index, count: all.count) }
        return all[index].png
    }

    // MARK: - State of the service

    public struct Health: Sendable {
        // Public (the memberwise one is internal) so a database-backed queue can rebuild stored values.
        public init(models: [(name: String, loaded: Bool)], defaultModel: String, loading: String?, queueDepth: Int,
                    queueCapacity: Int, running: JobID?, jobsKept: Int) {
            (self.models, self.defaultModel, self.loading, self.queueDepth) = (models, defaultModel, loading, queueDepth)
            (self.queueCapacity, self.running, self.jobsKept) = (queueCapacity, running, jobsKept)
        }

        /// Model name → loaded.
        public var models: [(name: String, loaded: Bool)]
        public var defaultModel: String
        public var loading: String?
        public var queueDepth: Int
        public var queueCapacity: Int
        public var running: JobID?
        public var jobsKept: Int
    }

    public var health: Health {
        lock.lock()
        defer { lock.unlock() }
        return Health(models: catalog.names.map { ($0, pipelines[$0] != nil) }, defaultModel: catalog.defaultName,
                      loading: loadingModel, queueDepth: waiting.count, queueCapacity: configuration.queueSize,
                      running: runningID, jobsKept: jobs.count)
    }

    /// The loaded pipeline of a model, if it is loaded (for front ends that show its defaults).
    public func loadedPipeline(_ model: String?) -> DiffusionPipeline? {
        guard let entry = try? catalog.entry(named: model) else { return nil }
        lock.lock()
        defer { lock.unlock() }
        return pipelines[entry.name]
    }

    /// Stops taking jobs, cancels every queued and running one, and waits (up to `timeout`) for the
    /// runner to finish its current step.
    public func shutdown(timeout: TimeInterval) {
        lock.lock()
        stopping = true
        for id in waiting {
            guard let r = jobs[id] else { continue }
            r.status = .cancelled
            finishLocked(r)
        }
        waiting = []
        if let id = runningID { jobs[id]?.cancelRequested = true }
        lock.broadcast()
        let deadline = Date().addingTimeInterval(timeout)
        while !runnerDone && Date() < deadline { _ = lock.wait(until: deadline) }
        lock.unlock()
    }

    // MARK: - Internals (lock held where the name says so)

    func recordLocked(_ id: JobID) throws(ServiceError) -> JobRecord {
        sweep(now: Date())
        if let r = jobs[id] { return r }
        throw expiredIDs.contains(id) ? .expired(id) : .notFound(id)
    }

    func positionLocked(_ id: JobID) -> Int? {
        waiting.firstIndex(of: id).map { $0 + 1 }
    }

    /// Tells every waiting job its (new) position.
    func announcePositionsLocked() {
        for (i, id) in waiting.enumerated() { jobs[id]?.emit(.queued(position: i + 1)) }
    }

    /// Marks a record finished, emits its final event, and tells the observer.
    func finishLocked(_ record: JobRecord) {
        record.finished = Date()
        finishedOrder.append(record.id)
        let snapshot = record.snapshot(queuePosition: nil)
        record.emit(record.terminalEvent(snapshot))
        observer?.jobFinished(snapshot)
        sweep(now: Date())
    }

    /// Drops finished jobs older than the lifetime, and the oldest beyond the count limit.
    func sweep(now: Date) {
        while let first = finishedOrder.first, let r = jobs[first] {
            let tooOld = now.timeIntervalSince(r.finished ?? now) > configuration.resultLifetime
            guard tooOld || finishedOrder.count > configuration.maxFinishedJobs else { break }
            finishedOrder.removeFirst()
            jobs[first] = nil
            expiredIDs.insert(first)
            expiredOrder.append(first)
            if expiredOrder.count > configuration.rememberedExpiredJobs { expiredIDs.remove(expiredOrder.removeFirst()) }
        }
    }

    /// Seconds a client should wait before retrying a full queue: about one job's time.
    func retryAfterLocked() -> Int {
        guard !recentJobSeconds.isEmpty else { return 5 }
        let mean = recentJobSeconds.reduce(0, +) / Double(recentJobSeconds.count)
        return max(1, min(3600, Int(mean.rounded(.up))))
    }
}
