// What A1111 keeps between calls: its options (the checkpoint in use, clip skip, ...), and the
// calls in progress that progress / interrupt / skip act on. A1111 runs one call at a time under a
// global lock; here calls queue in the service, so "the current call" is the one whose job runs.
import DeciDiffusion
import Foundation

final class A1111State: @unchecked Sendable {
    let service: any JobQueue
    private let lock = NSLock()
    private var options: [String: JSONValue]
    private var model: String
    private var calls: [Call] = []
    private var hashes: [String: String] = [:]

    /// One txt2img / img2img call: its jobs in order and what progress reports.
    final class Call: @unchecked Sendable {
        let ids: [JobID]
        let started = Date()
        let timestamp: String
        var index = 0
        var preview: [UInt8]?
        var interrupted = false
        var skipped = false
        init(ids: [JobID]) {
            self.ids = ids
            let f = DateFormatter()
            f.dateFormat = "yyyyMMddHHmmss"
            f.timeZone = TimeZone(identifier: "UTC")
            timestamp = f.string(from: started)
        }
    }

    init(service: any JobQueue) {
        self.service = service
        model = service.catalog.defaultName
        options = [:]
        options = defaultOptions()
    }

    private func defaultOptions() -> [String: JSONValue] {
        [
            "sd_model_checkpoint": .string(title(for: model)),
            "sd_checkpoint_hash": .string(hash(for: model)),
            "CLIP_stop_at_last_layers": .number(1),
            "sd_vae": .string("Automatic"),
            "samples_format": .string("png"),
            "eta_ddim": .number(0),
            "eta_ancestral": .number(1),
            "show_progress_every_n_steps": .number(10),
            "live_previews_enable": .bool(true),
            "show_progress_type": .string("Approx cheap"),
            "sd_lora": .string("None"),
            "samples_save": .bool(false),
            "outdir_samples": .string(""),
        ]
    }

    // MARK: - Options

    var currentModel: String { lock.withLock { model } }
    var clipSkip: Int { lock.withLock { Self.int(options["CLIP_stop_at_last_layers"]) ?? 1 } }
    var etaDDIM: Double { lock.withLock { Self.double(options["eta_ddim"]) ?? 0 } }
    /// Steps between previews for progress' current_image (0: none).
    var previewEvery: Int {
        lock.withLock {
            guard options["live_previews_enable"] != .bool(false) else { return 0 }
            return max(0, Self.int(options["show_progress_every_n_steps"]) ?? 10)
        }
    }

    var allOptions: [String: JSONValue] {
        lock.withLock {
            var o = options
            o["sd_model_checkpoint"] = .string(title(for: model))
            o["sd_checkpoint_hash"] = .string(hash(for: model))
            return o
        }
    }

    /// POST options: the whole dict a client read is accepted back; `sd_model_checkpoint` switches
    /// the model (loading it now), known options are checked, the rest is stored as sent.
    func setOptions(_ new: [String: JSONValue]) async throws(FieldError) {
        let f = JSONFields(object: new)
        var switchTo: String?
        if let title = try f.string("sd_model_checkpoint") { switchTo = try modelName(forTitle: title, field: "sd_model_checkpoint") }
        if let n = try f.int("CLIP_stop_at_last_layers"), !(1...12).contains(n) {
            throw f.fail("CLIP_stop_at_last_layers", "\(n) is outside 1...12")
        }
        if let fmt = try f.string("samples_format"), fmt.lowercased() != "png" { throw f.fail("samples_format", "only png is supported") }
        if let vae = try f.string("sd_vae"), !["automatic", "none"].contains(vae.lowercased()) {
            throw f.fail("sd_vae", "only the checkpoint's own VAE (\"Automatic\") is available")
        }
        _ = try f.double("eta_ddim")
        _ = try f.int("show_progress_every_n_steps")
        if let name = switchTo, name != currentModel {
            // Loading takes seconds to minutes: off the cooperative pool.
            let service = self.service
            let error: String? = await withCheckedContinuation { done in
                Thread.detachNewThread {
                    do { try service.preload(model: name); done.resume(returning: nil) } catch { done.resume(returning: "\(error)") }
                }
            }
            if let error { throw FieldError(field: "sd_model_checkpoint", "cannot load \(name): \(error)") }
        }
        lock.withLock {
            options.merge(new) { _, v in v }
            if let name = switchTo { model = name }
        }
    }

    // MARK: - Models

    /// A1111's checkpoint title: "<name> [<hash>]".
    func title(for name: String) -> String { "\(name) [\(hash(for: name))]" }

    /// A short, stable id for a checkpoint folder (A1111 shows sha256[:10] of the file). Hashing
    /// gigabytes at start-up is not worth it, so this hashes the folder's configs (FNV-1a 64):
    /// stable for a checkpoint, different between checkpoints with different configs or names.
    func hash(for name: String) -> String {
        if let h = hashes[name] { return h }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) { for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 } }
        mix(name.utf8)
        if let entry = try? service.catalog.entry(named: name) {
            let fm = FileManager.default
            let files = (try? fm.subpathsOfDirectory(atPath: entry.folder.path))?.filter { $0.hasSuffix(".json") }.sorted() ?? []
            for file in files.prefix(64) { mix(file.utf8); if let d = fm.contents(atPath: entry.folder.appendingPathComponent(file).path) { mix(d) } }
        }
        let hex = String(String(h, radix: 16).leftPadded(to: 16).prefix(10))
        hashes[name] = hex
        return hex
    }

    /// The model a client names by title ("name [hash]"), name or hash.
    func modelName(forTitle title: String, field: String) throws(FieldError) -> String {
        let t = title.trimmingCharacters(in: .whitespaces)
        for name in service.catalog.names {
            let h = lock.withLock { hash(for: name) }
            if t == name || t == h || t == "\(name) [\(h)]" || t.hasPrefix(name + " [") || t.hasPrefix(name + ".") { return name }
        }
        let titles = service.catalog.names.map { name in lock.withLock { self.title(for: name) } }
        throw FieldError(field: field, "unknown checkpoint \"\(title)\"; this server has \(titles.joined(separator: ", "))")
    }

    // MARK: - Calls in progress

    func begin(_ ids: [JobID]) -> Call {
        let call = Call(ids: ids)
        lock.withLock { calls.append(call) }
        return call
    }

    func end(_ call: Call) { lock.withLock { calls.removeAll { $0 === call } } }

    func update(_ call: Call, _ body: (Call) -> Void) { lock.withLock { body(call) } }

    /// The call whose job runs now, else the oldest waiting one.
    private func currentLocked() -> Call? {
        let running = service.health.running
        return calls.first { c in running.map { c.ids.contains($0) } ?? false } ?? calls.first
    }

    /// Interrupt: the current call stops (its running job keeps its partial image, its later
    /// images are dropped) and answers with what it has. An idle interrupt is lost, as in A1111.
    func interrupt() {
        let ids: [JobID] = lock.withLock {
            guard let call = currentLocked() else { return [] }
            call.interrupted = true
            return Array(call.ids[call.index...])
        }
        for id in ids { _ = try? service.cancel(id) }
    }

    /// Skip: the current call's running image stops early; its next image runs.
    func skip() {
        let id: JobID? = lock.withLock {
            guard let call = currentLocked(), call.index < call.ids.count else { return nil }
            call.skipped = true
            return call.ids[call.index]
        }
        if let id { _ = try? service.cancel(id) }
    }

    struct Progress {
        var progress: Double
        var etaRelative: Double
        var jobCount: Int
        var jobNo: Int
        var step: Int
        var steps: Int
        var interrupted: Bool
        var skipped: Bool
        var timestamp: String
        var job: String
        var preview: [UInt8]?
    }

    /// modules/api/api.py progressapi: p = 0.01 + job_no/job_count + (step/steps)/job_count.
    func progress() -> Progress {
        let snapshot: (Call, Int)? = lock.withLock { currentLocked().map { ($0, $0.index) } }
        guard let (call, index) = snapshot else {
            return Progress(progress: 0, etaRelative: 0, jobCount: 0, jobNo: 0, step: 0, steps: 0, interrupted: false,
                            skipped: false, timestamp: "0", job: "", preview: nil)
        }
        let job = index < call.ids.count ? try? service.job(call.ids[index]) : nil
        let step = job?.progress?.step ?? 0
        let steps = job?.progress?.totalSteps ?? job?.resolved?.stepsToRun ?? 0
        let count = call.ids.count
        var p = 0.01 + Double(index) / Double(count)
        if steps > 0 { p += Double(step) / Double(steps) / Double(count) }
        let elapsed = Date().timeIntervalSince(call.started)
        let eta = elapsed / p - elapsed
        return lock.withLock {
            Progress(progress: min(p, 1), etaRelative: eta, jobCount: count, jobNo: index, step: step, steps: steps,
                     interrupted: call.interrupted, skipped: call.skipped, timestamp: call.timestamp,
                     job: "Batch \(index + 1) out of \(count)", preview: call.preview)
        }
    }

    private static func int(_ v: JSONValue?) -> Int? {
        switch v {
        case let .number(n)?: Int(exactly: n.rounded())
        case let .string(s)?: Int(s)
        default: nil
        }
    }

    private static func double(_ v: JSONValue?) -> Double? {
        switch v {
        case let .number(n)?: n
        case let .string(s)?: Double(s)
        default: nil
        }
    }
}

extension String {
    func leftPadded(to length: Int, with pad: Character = "0") -> String {
        count >= length ? self : String(repeating: pad, count: length - count) + self
    }
}
