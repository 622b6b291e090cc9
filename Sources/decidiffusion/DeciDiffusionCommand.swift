import ArgumentParser

@main
struct DeciDiffusionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decidiffusion",
        abstract: "Native DeciDiffusion 1.0 / Stable Diffusion 1.x image generation.",
        discussion: """
            With no --model, the small bundled demo model is used. --model takes a diffusers checkpoint \
            folder or a Hugging Face repo id found in the local cache (e.g. Deci/DeciDiffusion-v1-0; \
            fetch one with `decidiffusion download REPO_ID`).
            """,
        subcommands: [Generate.self, Img2Img.self, Inpaint.self, Inspect.self, Bench.self, Serve.self, Download.self, Worker.self],
        defaultSubcommand: Generate.self
    )
}
