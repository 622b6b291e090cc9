// `decidiffusion serve`: the HTTP server over a job queue: the in-process GenerationService, or
// with --queue the PostgreSQL queue that workers on any machine serve (--worker: this process is
// one of them too). A thin shell: parse flags, build the catalog and the queue, preload, run the
// application until SIGINT / SIGTERM.
import ArgumentParser
import DeciDiffusion
import DeciQueuePostgres
import DeciServer
import DeciTensor
import Foundation
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the job API, /metrics and the web page over HTTP.",
        discussion: """
            With no --model or --models-dir the bundled demo model is served. Listens on 127.0.0.1 unless \
            --host says otherwise; a non-loopback address needs --api-key (or DECI_API_KEY) unless \
            --allow-unauthenticated. The API is described at /openapi.json.
            """)

    @OptionGroup var model: ModelOptions
    @OptionGroup var queue: QueueOptions

    @Flag(help: "With --queue: also run a worker in this process (it loads the model and generates).")
    var worker = false

    @Option(help: "With --worker: the worker's name in the queue (default: HOST-PID).")
    var name: String?

    @Option(name: .customLong("models-dir"), help: "Serve every checkpoint folder in this directory (requests pick one by name).")
    var modelsDir: String?

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: a free one, printed once listening).") var port = 7860
    @Option(name: .customLong("queue-size"), help: "Jobs that may wait behind the running one (429 beyond).") var queueSize = 16
    @Option(name: .customLong("api-key"), help: "Require Authorization: Bearer <key> (default: $DECI_API_KEY).") var apiKey: String?
    @Option(name: .customLong("cors-origin"), help: "Allow browser calls from this one origin (e.g. http://localhost:3000).") var corsOrigin: String?
    @Option(name: .customLong("max-pixels"), help: "Most width x height pixels per image.") var maxPixels = 1024 * 1024
    @Option(name: .customLong("max-batch"), help: "Most images per request.") var maxBatch = 8
    @Option(name: .customLong("max-body-mb"), help: "Largest request body in MB (413 beyond).") var maxBodyMB = 32
    @Option(name: .customLong("result-lifetime"), help: "Seconds a finished job's images are kept (410 after).") var resultLifetime = 600.0
    @Flag(name: .customLong("allow-unauthenticated"), help: "Allow a non-loopback --host without an API key.") var allowUnauthenticated = false
    @Flag(name: .customLong("no-request-log"), help: "Do not log each request.") var noRequestLog = false

    func validate() throws {
        if modelsDir != nil && model.model != nil { throw ValidationError("give --model or --models-dir, not both") }
        if worker && queue.url == nil { throw ValidationError("--worker needs --queue postgresql://... (without it, serve generates itself)") }
        guard queueSize >= 0 else { throw ValidationError("--queue-size: \(queueSize) must be 0 or more") }
        guard maxPixels > 0, maxBatch > 0 else { throw ValidationError("--max-pixels and --max-batch must be positive") }
        guard maxBodyMB > 0 else { throw ValidationError("--max-body-mb: must be positive") }
        try settings().validate()
    }

    func settings() -> ServerSettings {
        ServerSettings(host: host, port: port, apiKey: apiKey ?? ProcessInfo.processInfo.environment["DECI_API_KEY"],
                       corsOrigin: corsOrigin, maxBodyBytes: maxBodyMB << 20, allowUnauthenticated: allowUnauthenticated,
                       logRequests: !noRequestLog)
    }

    func run() throws {
        Backend.threads = model.threads
        let catalog = try model.catalog(modelsDir: modelsDir)
        var configuration = ServiceConfiguration()
        configuration.queueSize = queueSize
        // Requests pick LoRAs by name in --lora-dir; the models load bare and switch in place.
        if !model.lora.isEmpty { throw ValidationError("serve: name LoRAs per request (loras, or <lora:NAME:SCALE> tags) from --lora-dir instead of --lora") }
        configuration.loraDirectory = model.loraDir.map { URL(fileURLWithPath: $0) }
        configuration.textualInversions = model.embedding
        configuration.resultLifetime = resultLifetime
        configuration.limits = GenerationLimits(maxPixelsPerImage: maxPixels, maxBatch: maxBatch)
        let metrics = ServerMetrics()
        func loaded(_ configuration: ServiceConfiguration) throws -> GenerationService {
            let local = GenerationService(catalog: catalog, configuration: configuration, observer: metrics)
            FileHandle.standardError.write("loading \(catalog.defaultName) (\(catalog.precision.rawValue))...\n")
            try local.preload()
            return local
        }
        let service: any JobQueue
        var worker: QueueWorker?
        if let url = try queue.queueURL() {
            FileHandle.standardError.write("job queue: \(url)\n")
            service = try PostgresJobQueue(url: url, catalog: catalog, configuration: configuration, settings: queue.settings)
            if self.worker {
                worker = QueueWorker(url: url, service: try loaded(QueueWorker.localConfiguration(configuration)),
                                     name: name ?? Worker.defaultName(), models: catalog.names, settings: queue.settings)
            }
        } else {
            service = try loaded(configuration)
        }
        if let worker {
            Thread.detachNewThread {
                do { try worker.run() } catch { FileHandle.standardError.write("worker: \(error)\n") }
            }
        }
        let settings = settings()
        let host = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
        let app = buildApplication(service: service, settings: settings, metrics: metrics) { port in
            // Unbuffered: scripts and tests wait for this line.
            FileHandle.standardOutput.write(Data("listening on http://\(host):\(port)\n".utf8))
        }
        // The root command is synchronous: run the server on the concurrency pool and wait for it here.
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await app.runService() } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        worker?.stop()
        service.shutdown()
        if let error = outcome.error { throw error }
    }
}

private final class Outcome: @unchecked Sendable {
    var error: (any Error)?
}
