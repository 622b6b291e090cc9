import ArgumentParser
import DeciDiffusion
import DeciImage
import Foundation

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Text to image.")
    @OptionGroup var model: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    func run() throws {
        try Runner(model: model, sampling: sampling).run { _ in }
    }
}

struct Img2Img: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "img2img", abstract: "Image to image: start from --init-image, keep --strength of the schedule.")
    @OptionGroup var model: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @Option(name: .customLong("init-image"), help: "Start image (PNG or JPEG).") var initImage: String
    @Option(help: "How much to change the image, 0 < strength ≤ 1.") var strength = 0.8

    func run() throws {
        let image = try ImageFile.read(path: initImage).image
        try Runner(model: model, sampling: sampling).run { req in
            req.initImage = image
            req.strength = strength
        }
    }
}

struct Inpaint: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Repaint the white part of --mask in --init-image.")
    @OptionGroup var model: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @Option(name: .customLong("init-image"), help: "Image to edit (PNG or JPEG).") var initImage: String
    @Option(help: "Mask image: white = repaint, black = keep.") var mask: String
    @Option(help: "How much to change the masked part, 0 < strength ≤ 1.") var strength = 1.0

    func run() throws {
        let image = try ImageFile.read(path: initImage).image
        let maskImage = try ImageFile.read(path: mask).image
        try Runner(model: model, sampling: sampling).run { req in
            req.initImage = image
            req.mask = maskImage
            req.strength = strength
        }
    }
}

/// Shared by the three generation commands: load, run with a progress bar, write PNGs.
struct Runner {
    let model: ModelOptions
    let sampling: SamplingOptions

    func run(_ customize: (inout GenerationRequest) -> Void) throws {
        let seed = GenerationRequest.resolveSeed(sampling.seed)
        var requests = try sampling.requests(seed: seed)
        for i in requests.indices { customize(&requests[i]) }
        let loras = try model.loraReferences(&requests)
        let pipeline = try model.loadPipeline(quiet: sampling.quiet, loras: loras)
        if !sampling.quiet { FileHandle.standardError.write("seed: \(seed)\n") }
        var results: [GenerationResult] = []
        for (i, request) in requests.enumerated() {
            if !sampling.quiet && requests.count > 1 {
                FileHandle.standardError.write("[\(i + 1)/\(requests.count)] \(request.prompts[0]) (seed \(request.seed))\n")
            }
            let bar = ProgressBar(enabled: !sampling.quiet)
            let result = try pipeline.generate(request) { p in
                bar.update(p)
                return true
            }
            bar.finish()
            for w in result.warnings { FileHandle.standardError.write("warning: \(w)\n") }
            results.append(result)
        }
        let paths: [String]
        do {
            paths = try OutputPaths.resolve(sampling.output, count: results.reduce(0) { $0 + $1.images.count }, seed: seed)
        } catch {
            // A usage error, reported with the usage text as before.
            throw ValidationError(error.description)
        }
        var next = 0
        for result in results {
            let mine = Array(paths[next..<(next + result.images.count)])
            next += mine.count
            try result.writePNGs(to: mine, model: pipeline.modelName)
            for path in mine { print(path) }
            if !sampling.quiet {
                let t = result.timings
                FileHandle.standardError.write(String(format: "text encoder %.2f s, denoising %.2f s (%.2f s/step), VAE decode %.2f s\n",
                                                      t.textEncoder, t.denoising, t.denoising / Double(max(t.steps, 1)), t.vaeDecode))
            }
        }
    }
}

/// One line redrawn in place on a terminal; plain lines otherwise.
final class ProgressBar {
    let enabled: Bool
    let tty = isatty(STDERR_FILENO) != 0
    var lastStep = 0
    var lastElapsed = 0.0

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: StepProgress) {
        guard enabled else { return }
        let mean = p.elapsed / Double(p.step)
        let last = p.elapsed - lastElapsed
        lastElapsed = p.elapsed
        lastStep = p.step
        let eta = mean * Double(p.totalSteps - p.step)
        let width = 30
        let filled = width * p.step / p.totalSteps
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let rate = mean < 1 ? String(format: "%.2f it/s", 1 / mean) : String(format: "%.2f s/it", mean)
        let line = String(format: "[%@] %d/%d t=%.0f %@ (last %.2f s) ETA %@", bar, p.step, p.totalSteps, p.timestep, rate, last,
                          Self.clock(eta))
        FileHandle.standardError.write(tty ? "\r\u{1B}[K" + line : line + "\n")
    }

    func finish() {
        if enabled && tty && lastStep > 0 { FileHandle.standardError.write("\n") }
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return String(format: "%d:%02d", t / 60, t % 60)
    }
}
