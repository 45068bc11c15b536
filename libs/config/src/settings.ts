import 'reflect-metadata';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsDefined,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Max,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';

/**
 * One decorator per kind of setting of the config schema (class-validator and class-transformer
 * stacks), so that every setting of a kind is checked alike and reads as one line. Each helper
 * registers exactly the stack it names, in the order TypeScript applies a stack written top to
 * bottom (the bottom one first): the validation errors and their order are those of the stack.
 */
function stack(...decorators: PropertyDecorator[]): PropertyDecorator {
  return (target, key) => {
    for (let i = decorators.length - 1; i >= 0; i--) decorators[i](target, key);
  };
}

/** An integer in [min, max] (`@IsInt() @Min(min) @Max(max)`); units are in the setting's name. */
export function IntIn(min: number, max: number): PropertyDecorator {
  return stack(IsInt(), Min(min), Max(max));
}

/** A TCP port, 1..65535; required, or `optional` (absent: no listener). */
export function Port(presence: 'required' | 'optional' = 'required'): PropertyDecorator {
  return stack(presence === 'optional' ? IsOptional() : IsDefined(), IntIn(1, 65535));
}

/** A non-empty string (a host, a file path); `optional`: absent allowed. */
export function Text(presence: 'required' | 'optional' = 'required'): PropertyDecorator {
  return presence === 'optional' ? stack(IsOptional(), IsString(), IsNotEmpty()) : stack(IsString(), IsNotEmpty());
}

/** A non-empty string required when `when(object)` holds (a TLS file another field calls for); else unchecked. */
export function TextWhen<T>(when: (o: T) => boolean): PropertyDecorator {
  return stack(ValidateIf(when), Text());
}

/** A nested settings object of the class `type` returns (a thunk: the class may be declared later). */
export function Section(type: () => new () => object, presence: 'required' | 'optional' = 'required'): PropertyDecorator {
  return stack(presence === 'optional' ? IsOptional() : IsDefined(), ValidateNested(), Type(type));
}

/**
 * A non-empty list of members of the class `type` returns, with unique ids (at most `sizeMax`
 * when given); a repeated id fails with "`path` ids must be unique".
 */
export function Members(type: () => new () => { id: string }, path: string, sizeMax?: number): PropertyDecorator {
  const size = sizeMax === undefined ? [ArrayMinSize(1)] : [ArrayMinSize(1), ArrayMaxSize(sizeMax)];
  const unique = ArrayUnique((m: { id: string }) => m.id, { message: `${path} ids must be unique` });
  return stack(IsDefined(), ValidateNested({ each: true }), Type(type), ...size, unique);
}
