function file = femfreq_write_input(file, K, C, M, b, freqs, P, output_dofs, varargin)
%FEMFREQ_WRITE_INPUT  Save a frequency sweep's input for `femfreq sweep --matrices`.
%   FEMFREQ_WRITE_INPUT(FILE, K, C, M, B, FREQS, P, OUTPUT_DOFS) saves the variables
%   K, C, M (sparse, real, n x n; C may be [] for no viscous damping), b (n x 1, the
%   load vector), freqs (F x 1, Hz), P (F x 1 complex load spectrum, or a scalar) and
%   output_dofs (1-based; [] for all DOF) to the .mat FILE. Solve it with
%
%       femfreq sweep --matrices FILE -o result.mat
%
%   and load the answer with FEMFREQ_READ_RESULT('result.mat').
%
%   Name/value options:
%     'Version'  '-v7' (default: compressed, up to 2 GB per variable) or '-v7.3'
%                (HDF5, for larger matrices). GNU Octave cannot write MATLAB -v7.3
%                files; there '-v7.3' writes Octave's own HDF5 format ('-hdf5'),
%                which femfreq reads too.
%     'G'        structural damping factor g (stiffness K (1 + i g)), default 0
%
%   Returns the file name. The dynamic stiffness solved at each frequency f is
%   (1 + i g) K + i w C - w^2 M with w = 2 pi f, and the load is P(f) b.
%   Needs matlab/private/ beside it (the shared option parser): copy the whole folder.

opts = parse_options(varargin, {'Version', '-v7'; 'G', 0}, 'femfreq:write_input');
version = opts.version;
g = opts.g;
if ~any(strcmp(version, {'-v7', '-v7.3', '-v6'}))
  error('femfreq:write_input:version', 'Version must be ''-v7'' or ''-v7.3'' (got ''%s'')', num2str(version));
end
if size(K, 1) ~= size(K, 2)
  error('femfreq:write_input:size', 'K must be square (has size %d x %d)', size(K, 1), size(K, 2));
end
if ~isequal(size(M), size(K)) || (~isempty(C) && ~isequal(size(C), size(K)))
  error('femfreq:write_input:size', 'K, C and M must have the same size (K is %d x %d)', size(K, 1), size(K, 2));
end

s = struct();
s.K = sparse(double(K));
if ~isempty(C)
  s.C = sparse(double(C));
end
s.M = sparse(double(M));
s.b = full(double(b(:)));
s.freqs = full(double(freqs(:)));
s.P = full(double(P(:)));
if ~isempty(output_dofs)  % left out: femfreq keeps every DOF
  s.output_dofs = full(double(output_dofs(:)));
end
s.g = full(double(g));

if strcmp(version, '-v7.3') && exist('OCTAVE_VERSION', 'builtin') ~= 0
  version = '-hdf5';
end
save(file, '-struct', 's', version);
end
