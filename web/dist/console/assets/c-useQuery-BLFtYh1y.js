import{u as r,Q as u}from"./c-api-DovK7YNH.js";function a(e,s){return r(e,u)}export{a as u};
