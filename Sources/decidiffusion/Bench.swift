import ArgumentParser
import DeciBenchmarks
import DeciDiffusion
import DeciTensor
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: seconds per image (the model card's runtime table) and kernel rates.",
        subcommands: [Pipeline.self, Kernels.self], defaultSubcommand: Pipeline.self)

    struct Pipeline: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seconds per image at 30/35/50 steps with a breakdown, load time and peak RSS.",
            discussion: "Without --model, full-size random-weight DeciDiffusion (and with --sd15, SD 1.5) checkpoints are built once from the configs in Resources/configs under ~/.cache/decidiffusion/random; timing does not depend on weight values.")

        @Option(name: .shortAndLong, help: "Checkpoint folder or repo id (default: random-weight full-size DeciDiffusion).")
        var model: String?
        @Option(parsing: .upToNextOption, help: "Models to run: deci (--model, or random-weight DeciDiffusion), sd15 (random-weight SD 1.5, 50 steps).")
        var models: [BenchModel] = [.deci]
        @Flag(help: "Also benchmark a random-weight SD 1.5 (50 steps), and print the per-step ratio.") var sd15 = false
        @Option(help: "Compute precision.") var precision: Precision = .bf16
        @Option(help: "Image sizes.") var size: [Int] = [512]
        @Option(help: "Step counts to report.") var steps: [Int] = [30, 35, 50]
        @Option(help: "Denoising steps actually timed (the per-image figures use their mean).") var measureSteps = 3
        @Option(help: "Threads (0 = all cores).") var threads = 0
        @Option(help: "Timed runs per size after the warm-up; each stage reports its best.") var repeats = 1
        @Flag(help: "Print per-op time totals.") var profile = false
        @Flag(help: "Print one JSON object per model and size on stdout (everything else goes to stderr).") var json = false

        func run() throws {
            Backend.threads = threads
            say("backend: \(Backend.info)")
            var deciStep: [Int: Double] = [:]
            if models.contains(.deci) {
                let deci = try model.map { try CheckpointLayout.locate($0) } ?? randomFolder(.deciDiffusion)
                deciStep = try benchmark(folder: deci, model: "deci", label: model ?? "DeciDiffusion (random weights)", stepCounts: steps)
            }
            if sd15 || models.contains(.sd15) {
                let sd = try randomFolder(.sd15)
                let sdStep = try benchmark(folder: sd, model: "sd15", label: "SD 1.5 (random weights)", stepCounts: [50])
                for s in size where !json {
                    if let d = deciStep[s], let b = sdStep[s] {
                        print(String(format: "per-step ratio DeciDiffusion / SD 1.5 at %d px: %.2f (model card implies about 0.7)", s, d / b))
                    }
                }
            }
        }

        enum BenchModel: String, ExpressibleByArgument, CaseIterable {
            case deci, sd15
        }

        func validate() throws {
            if model != nil && !models.contains(.deci) { throw ValidationError("--model is benchmarked as 'deci': add it to --models") }
        }

        func randomFolder(_ kind: RandomCheckpoint.Kind) throws -> URL {
            let repo = RepoPaths.root
            return try RandomCheckpoint.folder(kind, specFolder: repo.appendingPathComponent("Resources/configs"),
                                               tokenizerFolder: repo.appendingPathComponent("Resources/clip-tokenizer")) { say($0) }
        }

        /// Progress text: stdout normally, stderr with --json so stdout holds only the JSON lines.
        func say(_ line: String) {
            if json { FileHandle.standardError.write(line + "\n") } else { print(line) }
        }

        /// One --json line.
        struct Record: Encodable {
            let model: String, label: String, precision: String, size: Int, threads: Int, repeats: Int, measuredSteps: Int
            let loadSeconds: Double, textEncoderSeconds: Double, unetStepSeconds: Double, vaeDecodeSeconds: Double, peakRSSBytes: Int
        }

        func benchmark(folder: URL, model: String, label: String, stepCounts: [Int]) throws -> [Int: Double] {
            let pipeline = try DiffusionPipeline(folder: folder, precision: precision)
            say("\n\(label): \(folder.path)\nload: \(String(format: "%.2f", pipeline.loadSeconds)) s, precision \(precision.rawValue)")
            var perStep: [Int: Double] = [:]
            for s in size {
                OpProfile.enabled = false
                OpProfile.reset()
                var r = try PipelineBenchmark.run(pipeline, size: s, measureSteps: measureSteps)
                for _ in 1..<max(repeats, 1) {
                    r = PipelineBenchmark.best(r, try PipelineBenchmark.run(pipeline, size: s, measureSteps: measureSteps, warmUp: false))
                }
                if json {
                    let record = Record(model: model, label: label, precision: precision.rawValue, size: s, threads: Backend.threads,
                                        repeats: max(repeats, 1), measuredSteps: r.measuredSteps, loadSeconds: r.loadSeconds,
                                        textEncoderSeconds: r.textEncoderSeconds, unetStepSeconds: r.stepSeconds,
                                        vaeDecodeSeconds: r.vaeDecodeSeconds, peakRSSBytes: r.peakRSSBytes)
                    print(String(decoding: try JSONEncoder().encode(record), as: UTF8.self))
                    fflush(nil)
                    perStep[s] = r.stepSeconds
                    continue
                }
                if profile {
                    OpProfile.enabled = true
                    _ = try PipelineBenchmark.run(pipeline, size: s, measureSteps: 1)
                    OpProfile.enabled = false
                }
                perStep[s] = r.stepSeconds
                print(String(format: "%d px: text encoder %.3f s, UNet step (batch 2) %.3f s, VAE decode %.3f s, peak RSS %.2f GiB",
                             s, r.textEncoderSeconds, r.stepSeconds, r.vaeDecodeSeconds, Double(r.peakRSSBytes) / 1073741824))
                for n in stepCounts {
                    print(String(format: "  %3d steps: %7.2f s per image", n, r.secondsPerImage(steps: n)))
                }
                if profile { print(OpProfile.report()) }
            }
            return perStep
        }
    }

    struct Kernels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "GFLOP/s of the kernels that dominate a 512 px step (conv, attention, linear) and GB/s of GroupNorm+SiLU.")

        @Option(help: "Threads (0 = all cores).") var threads = 0
        @Option(help: "Timed repetitions per case (best is kept).") var repeats = 3
        @Option(help: "Precisions to run: f32, bf16.") var precision: [Precision] = Precision.allCases
        @Flag(help: "Print results as JSON lines.") var json = false

        func run() throws {
            Backend.threads = threads
            if !json { print("backend: \(Backend.info)") }
            let enc = JSONEncoder()
            _ = try KernelBenchmark.run(precisions: precision, repeats: repeats) { r in
                if json, let line = try? enc.encode(r) {
                    print(String(decoding: line, as: UTF8.self))
                } else {
                    print(String(format: "%-44@ %-5@ %8.4f s %8.1f %@", r.name as NSString, r.precision as NSString, r.seconds, r.rate,
                                 r.unit as NSString))
                }
                fflush(nil)
            }
        }
    }
}

/// The repository the executable was built in (for Resources/), found from the executable's
/// path, falling back to the working directory.
enum RepoPaths {
    static var root: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Resources/configs").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }
}
