// Flags of the PostgreSQL job queue, shared by `serve --queue` and `worker`.
import ArgumentParser
import DeciQueuePostgres

struct QueueOptions: ParsableArguments {
    @Option(name: .customLong("queue"), help: "A PostgreSQL job queue shared by API nodes and workers: postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (or ?host=/socket/dir).")
    var url: String?

    @Option(name: .customLong("lease-seconds"), help: "Seconds a worker may go silent before its job is run by another worker.")
    var leaseSeconds = 30.0

    @Option(name: .customLong("max-attempts"), help: "Runs a job gets (counting runs whose worker died) before it fails.")
    var maxAttempts = 3

    @Option(name: .customLong("poll-seconds"), help: "Fallback poll for changes a notification did not announce.")
    var pollSeconds = 2.0

    func validate() throws {
        guard leaseSeconds >= 1, leaseSeconds <= 3600 else { throw ValidationError("--lease-seconds: \(leaseSeconds) must be in 1...3600") }
        guard (1...100).contains(maxAttempts) else { throw ValidationError("--max-attempts: \(maxAttempts) must be in 1...100") }
        guard pollSeconds >= 0.1, pollSeconds <= 60 else { throw ValidationError("--poll-seconds: \(pollSeconds) must be in 0.1...60") }
        if let url { do { _ = try QueueURL(url) } catch { throw ValidationError(error.description) } }
    }

    func queueURL() throws -> QueueURL? {
        guard let url else { return nil }
        do { return try QueueURL(url) } catch { throw ValidationError(error.description) }
    }

    var settings: QueueSettings {
        var s = QueueSettings()
        (s.leaseSeconds, s.maxAttempts, s.pollSeconds) = (leaseSeconds, maxAttempts, pollSeconds)
        return s
    }
}
