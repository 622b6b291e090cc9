// /metrics: a Prometheus registry fed by the service (as its observer) and by the request middleware.
import DeciDiffusion
import Foundation
import Hummingbird
import Prometheus

/// The server's metrics. Pass it to `GenerationService(observer:)` and to ``buildApplication(service:settings:metrics:onListening:)``.
public final class ServerMetrics: GenerationServiceObserver, @unchecked Sendable {
    // Prometheus' metric objects are thread-safe; the class holds only `let`s.
    public let registry: PrometheusCollectorRegistry
    let queueDepth: Gauge
    let queueCapacity: Gauge
    let running: Gauge
    let stepSeconds: ValueHistogram
    let imagesGenerated: Counter
    let jobsByStatus: [JobStatus: Counter]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        queueDepth = registry.makeGauge(descriptor: Self.name("queue_depth", "Jobs waiting in the queue (not counting the running one)."))
        queueCapacity = registry.makeGauge(descriptor: Self.name("queue_capacity", "Jobs the queue holds at most."))
        running = registry.makeGauge(descriptor: Self.name("jobs_running", "Jobs generating now (0 or 1)."))
        stepSeconds = registry.makeValueHistogram(descriptor: Self.name("step_seconds", "Wall time of one denoising step."),
                                                  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30])
        imagesGenerated = registry.makeCounter(descriptor: Self.name("images_generated_total", "Images produced (partial ones included)."))
        var jobs: [JobStatus: Counter] = [:]
        for status in [JobStatus.succeeded, .failed, .cancelled] {
            jobs[status] = registry.makeCounter(descriptor: Self.name("jobs_total", "Jobs that reached a final state, by outcome."),
                                                labels: [("status", status.rawValue)])
        }
        jobsByStatus = jobs
    }

    /// `decidiffusion_<name>`.
    static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "decidiffusion", metricName: name, unitName: "", helpText: help)
    }

    // MARK: GenerationServiceObserver

    public func jobFinished(_ snapshot: JobSnapshot) {
        jobsByStatus[snapshot.status]?.increment()
        if snapshot.imageCount > 0 { imagesGenerated.increment(by: Int64(snapshot.imageCount)) }
    }

    public func stepCompleted(seconds: Double) {
        stepSeconds.record(seconds)
    }

    public func modelLoaded(name: String, seconds: Double) {
        registry.makeGauge(descriptor: Self.name("model_load_seconds", "How long the model took to load."), labels: [("model", name)])
            .set(to: seconds)
    }

    // MARK: Requests

    func requestFinished(method: String, route: String, status: Int) {
        registry.makeCounter(descriptor: Self.name("http_requests_total", "HTTP requests answered, by method, route and status."),
                             labels: [("method", method), ("route", route), ("status", String(status))]).increment()
    }

    /// The exposition text, with the queue gauges read from the service now.
    func render(_ health: GenerationService.Health) -> [UInt8] {
        queueDepth.set(to: Double(health.queueDepth))
        queueCapacity.set(to: Double(health.queueCapacity))
        running.set(to: health.running == nil ? 0 : 1)
        return registry.emitToBuffer()
    }
}

/// Counts every answered request by method, matched route (never the raw path, so ids do not make
/// new series) and status.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.requestFinished(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: response.status.code)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.requestFinished(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: status)
            throw error
        }
    }
}
