function opts = parse_options(args, defaults, id)
%PARSE_OPTIONS  Name/value options of the femfreq .m functions (private to matlab/).
%   OPTS = PARSE_OPTIONS(ARGS, DEFAULTS, ID) reads the name/value pairs of the cell
%   ARGS (a caller's varargin) into the struct OPTS. DEFAULTS is a k x 2 cell of
%   option names, as shown to users ('FixNodes'), and their default values; the fields
%   of OPTS are the lower-case names (opts.fixnodes). Names match case-insensitively,
%   a name given twice keeps its last value, and MATLAB strings ("...") become char
%   (so that isempty('') holds and strcmpi works in every release).
%
%   Errors, with identifier [ID ':options'] (e.g. 'femfreq:solve:options'):
%     unknown option 'Colour'; known: Mass, FixNodes, ...
%     option names must be text (got 5 as option name 1); known: Mass, ...
%     option 'Fix' has no value (options are name/value pairs)
%
%   Shared by femfreq_rod_model, femfreq_solve and femfreq_write_input: functions in
%   matlab/ see matlab/private/ in MATLAB and GNU Octave, so copy the whole folder.

names = defaults(:, 1).';
known = sprintf('%s, ', names{:});
known = known(1:end - 2);
opts = struct();
for k = 1:numel(names)
  opts.(lower(names{k})) = defaults{k, 2};
end
if ~iscell(args)
  error([id ':options'], 'options must be given as a cell of name/value pairs (got a %s)', class(args));
end
for a = 1:2:numel(args)
  name = args{a};
  if isa(name, 'string') && isscalar(name)
    name = char(name);
  end
  if ~ischar(name) || (~isempty(name) && size(name, 1) ~= 1)
    error([id ':options'], 'option names must be text (got %s as option name %d); known: %s', ...
          describe(name), (a + 1) / 2, known);
  end
  match = find(strcmpi(name, names), 1);
  if isempty(match)
    error([id ':options'], 'unknown option ''%s''; known: %s', name, known);
  end
  if a + 1 > numel(args)
    error([id ':options'], 'option ''%s'' has no value (options are name/value pairs)', names{match});
  end
  value = args{a + 1};
  if isa(value, 'string') && isscalar(value)
    value = char(value);
  end
  opts.(lower(names{match})) = value;
end
end


function text = describe(x)
% a short description of a bad option name for the error message
if (isnumeric(x) || islogical(x)) && isscalar(x)
  text = num2str(x);
else
  text = sprintf('a %dx%d %s', size(x, 1), size(x, 2), class(x));
end
end
