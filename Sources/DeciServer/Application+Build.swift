// The server as one function: router, middleware and the service's lifecycle, so tests build the
// very same application and drive it with Hummingbird's testing client.
import DeciDiffusion
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Builds the HTTP application over `service`. `onListening` gets the bound port once the server
/// accepts connections (the real one when `settings.port` is 0).
public func buildApplication(service: any JobQueue, settings: ServerSettings, metrics: ServerMetrics = ServerMetrics(),
                             logger: Logger? = nil,
                             onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "decidiffusion.server")
    if let level = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) { logger.logLevel = level }
    let router = buildRouter(service: service, settings: settings, metrics: metrics)
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "decidiffusion"),
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? settings.port) },
        logger: logger)
    app.addServices(ServiceShutdown(service: service))
    return app
}

/// The router alone (middleware included).
public func buildRouter(service: any JobQueue, settings: ServerSettings, metrics: ServerMetrics) -> Router<DeciRequestContext> {
    let router = Router(context: DeciRequestContext.self)
    if settings.logRequests { router.add(middleware: LogRequestsMiddleware(.info)) }
    router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
    if let origin = settings.corsOrigin {
        router.add(middleware: CORSMiddleware(
            allowOrigin: .oneOf(origin),
            allowHeaders: [.accept, .authorization, .contentType, .origin],
            allowMethods: [.get, .post, .delete, .head, .options],
            exposedHeaders: ["Location", "Retry-After"],
            maxAge: .seconds(600)))
    }
    if let key = settings.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
    router.add(middleware: BodyLimitMiddleware(maxBytes: settings.maxBodyBytes))
    SystemRoutes(service: service, metrics: metrics, settings: settings).addRoutes(to: router)
    JobRoutes(service: service, maxBodyBytes: settings.maxBodyBytes).addRoutes(to: router)
    A1111Routes(service: service, state: A1111State(service: service), maxBodyBytes: settings.maxBodyBytes).addRoutes(to: router)
    OpenAIRoutes(service: service, maxBodyBytes: settings.maxBodyBytes).addRoutes(to: router)
    return router
}

/// Stops the generation service when the server shuts down gracefully (SIGINT / SIGTERM): queued
/// and running jobs are cancelled, so open event streams end and the server can drain.
struct ServiceShutdown: Service {
    let service: any JobQueue

    func run() async throws {
        try? await gracefulShutdown()
        let service = self.service
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            // shutdown() blocks until the runner finishes its current step: keep it off the cooperative pool.
            Thread.detachNewThread {
                service.shutdown()
                done.resume()
            }
        }
    }
}
