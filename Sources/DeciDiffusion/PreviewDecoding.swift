// The pipeline's side of per-step previews: which clean-latent estimate a step hands to its
// progress callback, and a full VAE decode of it for "every N steps" previews.
import DeciImage
import DeciModels
import DeciSchedulers
import DeciTensor

/// Schedulers whose step reports no x0 estimate but whose samples are variance preserving, so the
/// estimate follows from the model output and the training schedule.
protocol DerivableOriginalSample {
    var settings: ScheduleSettings { get }
}

extension PNDMScheduler: DerivableOriginalSample {}
extension UniPCMultistepScheduler: DerivableOriginalSample {}
extension DPMSolverMultistepScheduler: DerivableOriginalSample {}

extension DiffusionPipeline {
    /// The step's estimate: the scheduler's `predOriginalSample` when it reports one; else, for the
    /// VP multistep schedulers, derived from the guided output and the sample the step started
    /// from (only when read); else the latents after the step. Holds the step's arrays; the
    /// sampling latents are never touched.
    func previewSource(_ output: SchedulerOutput, guided: [Float], sample: [Float], latents: [Float], timestep: Float,
                       scheduler: any Scheduler, shape: LatentShape) -> LatentPreviewSource {
        let (n, c, h, w) = (shape.batch, shape.channels, shape.height, shape.width)
        if let x0 = output.predOriginalSample, x0.count == shape.count {
            return LatentPreviewSource(latents: x0, batch: n, channels: c, height: h, width: w, origin: .schedulerEstimate)
        }
        if let derivable = scheduler as? any DerivableOriginalSample, guided.count == sample.count {
            let settings = derivable.settings
            return LatentPreviewSource(batch: n, channels: c, height: h, width: w, origin: .derivedFromModelOutput) {
                settings.predictedOriginalSample(modelOutput: guided, sample: sample, timestep: timestep)
            }
        }
        return LatentPreviewSource(latents: latents, batch: n, channels: c, height: h, width: w, origin: .currentLatents)
    }

    /// Full VAE decode of a step's estimate (for previews every few steps: a decode costs about as
    /// much as a denoising step or more). Safe to call from the progress callback; a backend fault
    /// in it is thrown here and leaves the generation running.
    public func decodePreview(_ source: LatentPreviewSource, vaeTiling: Bool = false) throws -> [RGBImage] {
        guard source.channels == vae.config.latentChannels else {
            throw RequestError("preview: \(source.channels) latent channels, the VAE takes \(vae.config.latentChannels)")
        }
        do {
            return try decode(source.latents, batch: source.batch, height: source.height, width: source.width,
                              tiling: vaeTiling ? defaultVAETiling : nil).0
        } catch {
            if let fault = Backend.takeFault() { throw fault }
            throw error
        }
    }
}
