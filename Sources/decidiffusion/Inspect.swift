import ArgumentParser
import DeciDiffusion

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Components, classes, parameter counts and dtypes of a checkpoint (reads headers only).")

    @Argument(help: "Checkpoint folder or Hugging Face repo id (default: the bundled demo model).")
    var model: String?

    @Option(help: "Weight file variant to prefer, e.g. fp16.") var variant: String?

    func run() throws {
        let folder = try ModelOptions.parse(model.map { ["--model", $0] } ?? []).resolveFolder()
        let layout = try CheckpointLayout(root: folder)
        print(CheckpointSummary(layout: layout, variant: variant).text)
    }
}
