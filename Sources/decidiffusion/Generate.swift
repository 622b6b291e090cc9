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
        let seed = sampling.seed ?? UInt64(UInt32.random(in: 0...UInt32.max))
        var request = sampling.request(seed: seed)
        customize(&request)
        let pipeline = try model.loadPipeline(quiet: sampling.quiet)
        if sampling.vaeTiling { pipeline.vaeTiling = pipeline.defaultVAETiling }
        if !sampling.quiet { FileHandle.standardError.write("seed: \(seed)\n") }
        let bar = ProgressBar(enabled: !sampling.quiet)
        let result = try pipeline.generate(request) { p in
            bar.update(p)
            return true
        }
        bar.finish()
        for w in result.warnings { FileHandle.standardError.write("warning: \(w)\n") }
        let paths = try outputPaths(count: result.images.count, seed: seed)
        let req = result.request
        let modelName = URL(fileURLWithPath: pipeline.layout.root.path).lastPathComponent
        for (i, image) in result.images.enumerated() {
            var extra: [GenerationParameters.Field] = []
            if req.guidanceRescale > 0 { extra.append(.init("Guidance rescale", String(req.guidanceRescale))) }
            if request.initImage != nil { extra.append(.init("Denoising strength", String(req.strength))) }
            if req.clipSkip > 0 { extra.append(.init("Clip skip", String(req.clipSkip + 1))) }
            extra.append(.init("RNG", "CPU"))
            extra.append(.init("Batch pos", String(i)))
            let params = GenerationParameters(prompt: req.prompts[0], negativePrompt: req.negativePrompts[0], steps: req.steps,
                                              sampler: result.sampler, cfgScale: req.guidanceScale, seed: seed, width: image.width,
                                              height: image.height, model: modelName, extra: extra)
            try ImageFile.writePNG(image, to: paths[i], parameters: params)
            print(paths[i])
        }
        if !sampling.quiet {
            let t = result.timings
            FileHandle.standardError.write(String(format: "text encoder %.2f s, denoising %.2f s (%.2f s/step), VAE decode %.2f s\n",
                                                  t.textEncoder, t.denoising, t.denoising / Double(max(t.steps, 1)), t.vaeDecode))
        }
    }

    /// `--output` as a file (`x.png`, numbered `x-1.png`... for a batch) or a folder.
    func outputPaths(count: Int, seed: UInt64) throws -> [String] {
        let out = sampling.output
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: out, isDirectory: &isDir)
        if out.hasSuffix("/") || (exists && isDir.boolValue) {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            return (0..<count).map { URL(fileURLWithPath: out).appendingPathComponent("\(seed)-\($0).png").path }
        }
        guard out.lowercased().hasSuffix(".png") else { throw ValidationError("--output \(out): give a .png file or a folder ending in /") }
        let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent) else { throw ValidationError("--output \(out): folder \(parent) does not exist") }
        if count == 1 { return [out] }
        let stem = String(out.dropLast(4))
        return (1...count).map { "\(stem)-\($0).png" }
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
