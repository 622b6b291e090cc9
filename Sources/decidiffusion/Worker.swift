// `decidiffusion worker`: loads a model and generates the jobs of a PostgreSQL queue that API
// nodes (`serve --queue`) fill. A thin shell over QueueWorker; SIGINT / SIGTERM stop it after the
// current job's next step (that job is then run again by another worker once its lease expires).
import ArgumentParser
import DeciDiffusion
import DeciQueuePostgres
import DeciTensor
import Dispatch
import Foundation

struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate the jobs of a PostgreSQL job queue (filled by `serve --queue`).",
        discussion: """
            Claims only jobs for the models it serves (--model, or every checkpoint in --models-dir; the \
            names must match the API nodes'). Run any number, on any machines that reach the database.
            """)

    @OptionGroup var model: ModelOptions
    @OptionGroup var queue: QueueOptions

    @Option(name: .customLong("models-dir"), help: "Serve every checkpoint folder in this directory.")
    var modelsDir: String?

    @Option(help: "The worker's name in the queue (lease owner; default: HOST-PID).") var name: String?
    @Option(name: .customLong("max-pixels"), help: "Most width x height pixels per image.") var maxPixels = 1024 * 1024
    @Option(name: .customLong("max-batch"), help: "Most images per request.") var maxBatch = 8
    @Option(name: .customLong("measure-overhead"), help: "Instead of working: time the queue's own cost per job over this many synthetic jobs, print it, exit.")
    var measureOverhead: Int?

    func validate() throws {
        guard queue.url != nil else { throw ValidationError("worker needs --queue postgresql://USER@HOST/DB") }
        if modelsDir != nil && model.model != nil { throw ValidationError("give --model or --models-dir, not both") }
        guard maxPixels > 0, maxBatch > 0 else { throw ValidationError("--max-pixels and --max-batch must be positive") }
        if let name, name.isEmpty || name.count > 200 { throw ValidationError("--name: must be 1 to 200 characters") }
    }

    static func defaultName() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    func run() throws {
        Backend.threads = model.threads
        guard let url = try queue.queueURL() else { return }
        if let jobs = measureOverhead {
            guard jobs > 0 else { throw ValidationError("--measure-overhead: \(jobs) must be positive") }
            do { print(try QueueOverhead.measure(url: url, jobs: jobs)) } catch { throw ValidationError("\(error)") }
            return
        }
        let catalog = try model.catalog(modelsDir: modelsDir)
        var configuration = ServiceConfiguration()
        configuration.loraDirectory = model.loraDir.map { URL(fileURLWithPath: $0) }
        configuration.textualInversions = model.embedding
        configuration.limits = GenerationLimits(maxPixelsPerImage: maxPixels, maxBatch: maxBatch)
        let service = GenerationService(catalog: catalog, configuration: QueueWorker.localConfiguration(configuration))
        FileHandle.standardError.write("loading \(catalog.defaultName) (\(catalog.precision.rawValue))...\n")
        try service.preload()
        let worker = QueueWorker(url: url, service: service, name: name ?? Self.defaultName(), models: catalog.names, settings: queue.settings)
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { worker.stop() }
            source.resume()
            sources.append(source)
        }
        FileHandle.standardOutput.write(Data("worker \(worker.name) ready (queue \(url))\n".utf8))
        do { try worker.run() } catch { throw ValidationError("worker: \(error)") }
        service.shutdown()
        _ = sources
    }
}
