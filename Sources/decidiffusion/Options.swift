import ArgumentParser
import DeciDiffusion
import DeciTensor
import Foundation

extension Precision: ExpressibleByArgument {}
extension PromptWeighting: ExpressibleByArgument {}

struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Checkpoint folder or Hugging Face repo id (default: the bundled demo model).")
    var model: String?

    @Option(help: "Compute precision: f32 or bf16.")
    var precision: Precision = .f32

    @Option(help: "Weight file variant to prefer, e.g. fp16.")
    var variant: String?

    @Option(help: "CPU threads (0 = all cores).")
    var threads = 0

    /// The checkpoint folder: --model, or the demo model next to the sources / executable.
    func resolveFolder() throws -> URL {
        if let model { return try CheckpointLayout.locate(model) }
        if let demo = DemoModel.locate() { return demo }
        throw ValidationError("no --model given and the bundled demo model (Models/demo) was not found; set DECI_DEMO_MODEL or pass --model")
    }

    func loadPipeline(quiet: Bool) throws -> DiffusionPipeline {
        Backend.threads = threads
        let folder = try resolveFolder()
        if !quiet { FileHandle.standardError.write("loading \(folder.path) (\(precision.rawValue))...\n") }
        let pipeline = try DiffusionPipeline(folder: folder, precision: precision, variant: variant)
        if !quiet {
            var line = String(format: "loaded in %.2f s: %@", pipeline.loadSeconds, pipeline.layout.denoiser.rawValue)
            if !pipeline.layout.skipped.isEmpty { line += "; not run: " + pipeline.layout.skipped.joined(separator: ", ") }
            FileHandle.standardError.write(line + "\n")
        }
        return pipeline
    }
}

/// Finds the bundled demo model without any configuration.
enum DemoModel {
    static func locate() -> URL? {
        let env = ProcessInfo.processInfo.environment
        var candidates: [URL] = []
        if let e = env["DECI_DEMO_MODEL"] { candidates.append(URL(fileURLWithPath: e)) }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Models/demo"))
        // <repo>/.build/<config>/decidiffusion -> <repo>/Models/demo
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("Models/demo"))
            candidates.append(dir.appendingPathComponent("share/decidiffusion/demo"))
            dir = dir.deletingLastPathComponent()
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("model_index.json").path) }
    }
}

struct SamplingOptions: ParsableArguments {
    @Argument(help: "The prompt.")
    var prompt: String

    @Option(name: [.customShort("N"), .customLong("negative-prompt")], help: "What to steer away from.")
    var negativePrompt: String?

    @Option(name: [.short, .customLong("num-images")], help: "Images to generate for the prompt.")
    var numImages = 1

    @Option(name: .shortAndLong, help: "Image width (default: the model's).") var width: Int?
    @Option(name: [.customShort("H"), .long], help: "Image height (default: the model's).") var height: Int?

    @Option(name: .shortAndLong, help: "Denoising steps (default: 30 for DeciDiffusion, 50 for SD).")
    var steps: Int?

    @Option(name: [.customLong("cfg"), .customLong("guidance-scale")], help: "Classifier-free guidance scale (default 7.5; ≤ 1 turns guidance off).")
    var guidanceScale: Double?

    @Option(help: "Guidance rescale phi (default: 0.7 for DeciDiffusion text-to-image; 0 for SD and for img2img/inpaint, as diffusers).")
    var guidanceRescale: Double?

    @Option(help: "Scheduler by name: ddim, pndm, euler, euler_a, heun, lms, \"DPM++ 2M Karras\", dpm++2m_sde, unipc, lcm, ... (default: the checkpoint's).")
    var scheduler: String?

    @Option(help: "Random seed (default: a random one, printed).")
    var seed: UInt64?

    @Option(help: "DDIM eta.") var eta = 0.0
    @Option(help: "Text-encoder layers to skip from the end (A1111's clip skip minus one).") var clipSkip = 0

    @Option(help: ArgumentHelp(
        "How prompts are read: none or a1111 (default none).",
        discussion: "none: the text as diffusers encodes it, cut at 77 tokens with a warning (same seed, same image as diffusers). a1111: AUTOMATIC1111's syntax, (word) x1.1, ((word)) x1.21, [word] /1.1, (word:1.3), \\( \\) escapes, BREAK to start a new chunk; prompts of any length in 75-token chunks; the A1111 API uses it."))
    var promptWeighting: PromptWeighting = .none

    @Flag(help: "With --prompt-weighting a1111, when prompt and negative prompt have different chunk counts: pad the shorter with empty-prompt chunks and batch them (A1111's option of that name) instead of two denoiser calls.")
    var padCondUncond = false

    @Option(name: .shortAndLong, help: "Output PNG file, or a folder (numbered files). A batch numbers the files.")
    var output = "output.png"

    @Flag(help: "Decode (and encode) with the VAE in overlapping tiles (large images, bounded memory).")
    var vaeTiling = false

    @Flag(name: .shortAndLong, help: "Only print the written paths.")
    var quiet = false

    func request(seed resolvedSeed: UInt64) -> GenerationRequest {
        var r = GenerationRequest(prompt: prompt, negativePrompt: negativePrompt)
        r.imagesPerPrompt = numImages
        r.width = width
        r.height = height
        r.steps = steps
        r.guidanceScale = guidanceScale
        r.guidanceRescale = guidanceRescale
        r.scheduler = scheduler
        r.seed = resolvedSeed
        r.eta = eta
        r.clipSkip = clipSkip
        r.vaeTiling = vaeTiling
        r.promptWeighting = promptWeighting
        r.padCondUncond = padCondUncond
        return r
    }
}

extension FileHandle {
    func write(_ s: String) { write(Data(s.utf8)) }
}
