// Diffusion timestep features, as diffusers' `get_timestep_embedding` computes them in float32.
import Foundation

extension Ops {
    /// Sinusoidal features `[timesteps.count, channels]` of the timesteps: for frequency `i` of
    /// `channels / 2`, `exp(-ln(10000) * i / (channels / 2 - freqShift))`, the first half holds
    /// the sines and the second the cosines, swapped when `flipSinToCos` (Stable Diffusion's
    /// setting). An odd `channels` leaves the last column zero, as diffusers pads it.
    public static func timestepEmbedding(_ timesteps: [Float], channels: Int, flipSinToCos: Bool, freqShift: Float) -> Tensor {
        let half = channels / 2
        let out = Tensor.zeros([timesteps.count, channels])
        if Fault.skips("timestepEmbedding", out) { return out }
        let p = out.pointer
        let logMax = Float(log(10000.0))
        for (b, t) in timesteps.enumerated() {
            for i in 0..<half {
                let freq = Foundation.exp(-logMax * Float(i) / (Float(half) - freqShift))
                let arg = t * freq
                let (s, c) = (Foundation.sin(arg), Foundation.cos(arg))
                p[b * channels + i] = flipSinToCos ? c : s
                p[b * channels + half + i] = flipSinToCos ? s : c
            }
        }
        return out
    }
}
