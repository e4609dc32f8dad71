function R = femfreq_read_result(file)
%FEMFREQ_READ_RESULT  Load the .mat result of `femfreq sweep --matrices ... -o FILE`.
%   R = FEMFREQ_READ_RESULT(FILE) returns a struct with
%     response        n_out x F complex: the response at the output DOF, one row per
%                     output DOF, one column per frequency
%     freqs_hz        F x 1 frequencies (Hz)
%     output_dofs     n_out x 1 output DOF (1-based, as given in the input)
%     rel_residual    F x 1 relative residual ||A x - P b|| / ||P b|| of each frequency
%     backward_error  F x 1 (when present)
%     load_spectrum   F x 1 complex P(f) (when present)
%     t, time_response  time grid and n_out x n_fft time response, when the sweep ran
%                     on an FFT grid (a model with a load history)

if ~exist(file, 'file')
  error('femfreq:read_result:noFile', '%s: no such result file', file);
end
R = load(file);
required = {'response', 'freqs_hz'};
for k = 1:numel(required)
  if ~isfield(R, required{k})
    error('femfreq:read_result:format', '%s: no variable ''%s'' (not a femfreq result?)', file, required{k});
  end
end
R.freqs_hz = R.freqs_hz(:);
if size(R.response, 2) ~= numel(R.freqs_hz)
  error('femfreq:read_result:format', '%s: response is %d x %d but there are %d frequencies', ...
        file, size(R.response, 1), size(R.response, 2), numel(R.freqs_hz));
end
fields = {'output_dofs', 'rel_residual', 'backward_error', 'load_spectrum', 't'};
for k = 1:numel(fields)
  if isfield(R, fields{k})
    R.(fields{k}) = R.(fields{k})(:);
  end
end
end
