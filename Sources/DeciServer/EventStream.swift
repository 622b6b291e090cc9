// Server-Sent Events over a job's events: `event: <name>` + `data: <one JSON line>` + a blank line.
import DeciDiffusion
import Foundation

enum EventStream {
    /// The SSE frame of one job event: queued {position}, started (job), progress {step, total_steps,
    /// eta_seconds, seconds_per_step, preview?, preview_kind?}, then done / failed / cancelled (job).
    static func frame(_ event: JobEvent) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func json(_ value: some Encodable) -> String {
            (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
        let name: String, data: String
        switch event {
        case let .queued(position):
            (name, data) = ("queued", json(["position": position]))
        case let .started(s):
            (name, data) = ("started", json(JobJSON(s)))
        case let .progress(p, preview):
            (name, data) = ("progress", json(ProgressJSON(p, preview: preview)))
        case let .succeeded(s):
            (name, data) = ("done", json(JobJSON(s)))
        case let .failed(s):
            (name, data) = ("failed", json(JobJSON(s)))
        case let .cancelled(s):
            (name, data) = ("cancelled", json(JobJSON(s)))
        }
        return "event: \(name)\ndata: \(data)\n\n"
    }

    /// A comment line that keeps idle proxies from closing the connection.
    static let keepAlive = ": keep-alive\n\n"
}

struct ProgressJSON: Encodable {
    var step: Int
    var totalSteps: Int
    var etaSeconds: Double?
    var secondsPerStep: Double?
    var preview: String?
    var previewKind: String?

    init(_ p: JobProgress, preview: JobPreview?) {
        (step, totalSteps, etaSeconds, secondsPerStep) = (p.step, p.totalSteps, p.etaSeconds, p.secondsPerStep)
        self.preview = preview.map { Data($0.png).base64EncodedString() }
        previewKind = preview?.kind.rawValue
    }

    enum CodingKeys: String, CodingKey {
        case step, preview
        case totalSteps = "total_steps", etaSeconds = "eta_seconds", secondsPerStep = "seconds_per_step", previewKind = "preview_kind"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step)
        try c.encode(totalSteps, forKey: .totalSteps)
        try c.encode(etaSeconds, forKey: .etaSeconds)
        try c.encode(secondsPerStep, forKey: .secondsPerStep)
        try c.encodeIfPresent(preview, forKey: .preview)
        try c.encodeIfPresent(previewKind, forKey: .previewKind)
    }
}
